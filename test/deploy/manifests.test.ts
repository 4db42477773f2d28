import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { Namespace, Secret, Service, ConfigMap } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { servingApp } from '../serving/serving-helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIR = join(ROOT, 'deploy/kubernetes');

/** Every kind the manifests may use, with the model that carries its JSON schema (no download). */
const MODELS: Record<string, new (o: any) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'networking.k8s.io/v1/Ingress': Ingress,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : /\.ya?ml$/.test(f) ? [p] : [];
  });
}

const objects = files(DIR).flatMap((file) =>
  parseAllDocuments(readFileSync(file, 'utf8')).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0].message}`);
    return { file: file.slice(DIR.length + 1), obj: doc.toJS() as any };
  }),
);
const byKind = (kind: string) => objects.filter((o) => o.obj.kind === kind).map((o) => o.obj);
const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/**
 * deploy/kubernetes/: every object validates against the Kubernetes (and KEDA) JSON schemas that
 * the kubernetes-models packages carry, offline; and the objects fit together (selectors, names,
 * secrets, probes, the metric pipeline from the serving pods to the HPA).
 */
describe('Kubernetes manifests', () => {
  it('validate against the Kubernetes schemas', () => {
    expect(objects.length).toBeGreaterThanOrEqual(14);
    for (const { file, obj } of objects) {
      const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
      expect(Model, `${file}: ${obj.apiVersion} ${obj.kind} has no schema here`).toBeDefined();
      expect(() => new Model(obj).validate(), `${file}: ${obj.kind}/${obj.metadata?.name}`).not.toThrow();
      if (obj.kind !== 'Namespace') expect(obj.metadata.namespace, `${file}: ${obj.kind}/${obj.metadata.name}`).toBe('flotilla');
    }
  });

  it('a schema violation is caught (the check can fail)', () => {
    const d = structuredClone(byKind('Deployment')[0]);
    d.spec.template.spec.containers[0].ports[0].containerPort = 'eighty';
    expect(() => new Deployment(d).validate()).toThrow();
  });

  it('wire together: selectors, services, secrets, probes and resources', () => {
    const deployments = byKind('Deployment');
    const services = byKind('Service');
    const secrets = new Map(byKind('Secret').map((s) => [s.metadata.name, Object.keys(s.stringData ?? s.data ?? {})]));
    for (const d of deployments) {
      expect(matches(d.spec.selector.matchLabels, d.spec.template.metadata.labels), d.metadata.name).toBe(true);
      for (const c of d.spec.template.spec.containers) {
        expect(c.resources?.requests && c.resources?.limits, `${d.metadata.name}/${c.name} resources`).toBeTruthy();
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          if (ref) expect(secrets.get(ref.name), `${d.metadata.name}: secret ${ref.name}/${ref.key}`).toContain(ref.key);
        }
        if (c.image?.startsWith('flotilla:')) {
          expect(['serve', 'sidecar']).toContain(c.args[0]);
          const probes = [c.readinessProbe, c.livenessProbe];
          expect(probes.every(Boolean), `${d.metadata.name}/${c.name} probes`).toBe(true);
          const paths = probes.map((p: any) => p.httpGet?.path ?? /127\.0\.0\.1:\d+(\/\w+)/.exec(p.exec?.command?.join(' ') ?? '')?.[1]);
          expect(paths, `${d.metadata.name}/${c.name}`).toEqual(['/readyz', '/healthz']);
        }
      }
      for (const v of d.spec.template.spec.volumes ?? []) if (v.secret) expect(secrets.has(v.secret.secretName), v.secret.secretName).toBe(true);
    }
    for (const s of services) expect(deployments.some((d) => matches(s.spec.selector, d.spec.template.metadata.labels)), `service ${s.metadata.name}`).toBe(true);
    for (const p of byKind('PodDisruptionBudget')) expect(deployments.some((d) => matches(p.spec.selector.matchLabels, d.spec.template.metadata.labels)), `pdb ${p.metadata.name}`).toBe(true);
    const coordinator = deployments.find((d) => d.metadata.name === 'flotilla-coordinator')!;
    const env = coordinator.spec.template.spec.containers[0].env.map((e: any) => e.name);
    expect(env).toEqual(expect.arrayContaining(['FLOTILLA_MONGODB_URL', 'FLOTILLA_CLUSTER_REDIS_URL', 'FLOTILLA_ADMIN_TOKEN']));
    expect(coordinator.spec.template.spec.containers[0].args).toEqual(expect.arrayContaining(['--role', 'coordinator']));
    const ingress = byKind('Ingress')[0];
    const backends = ingress.spec.rules.flatMap((r: any) => r.http.paths.map((p: any) => p.backend.service.name));
    for (const b of backends) expect(services.map((s) => s.metadata.name)).toContain(b);
    expect(ingress.metadata.annotations['nginx.ingress.kubernetes.io/proxy-read-timeout']).toBe('3600');
    const app = deployments.find((d) => d.metadata.name === 'example-app')!;
    const sidecar = app.spec.template.spec.containers.find((c: any) => c.args?.[0] === 'sidecar');
    expect(sidecar.args).toEqual(expect.arrayContaining(['--model', 'mnist@production', '--cache-dir']));
  });

  it('autoscale the serving Deployment on the queue-depth series the serving pods export', async () => {
    const hpa = byKind('HorizontalPodAutoscaler')[0];
    const scaled = byKind('ScaledObject')[0];
    for (const target of [hpa.spec.scaleTargetRef, scaled.spec.scaleTargetRef]) expect(target).toMatchObject({ kind: 'Deployment', name: 'flotilla-serving' });
    expect(hpa.spec.metrics[0].type).toBe('Pods');
    const adapter = byKind('ConfigMap').find((c) => c.metadata.name === 'flotilla-prometheus-adapter')!;
    const rule = (parseAllDocuments(adapter.data['config.yaml'])[0].toJS() as any).rules[0];
    expect(rule.name.as).toBe(hpa.spec.metrics[0].pods.metric.name);
    const series = /^(\w+)\{/.exec(rule.seriesQuery)![1];
    expect(scaled.spec.triggers[0].metadata.query).toContain(series);
    // The series exists, labelled per model, in what a serving process exports.
    const h = await servingApp({ publicMetrics: true });
    try {
      await h.publishTiny('tiny');
      expect((await h.call({ method: 'POST', url: '/v2/models/tiny/infer', json: { inputs: [{ name: 'hidden_input', shape: [1, 8], datatype: 'FP32', data: [0, 0, 0, 0, 0, 0, 0, 0] }] } })).status).toBe(200);
      const text = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(text).toMatch(new RegExp(`^${series}\\{model="tiny",version="1",variant="float32"\\} 0$`, 'm'));
    } finally {
      await h.app.close();
    }
  });

  it('docker-compose files validate with docker-compose config (where installed)', (ctx) => {
    const which = spawnSync('docker-compose', ['version'], { encoding: 'utf8' });
    if (which.error || which.status !== 0) {
      console.log('skipped: docker-compose is not installed (Debian package docker-compose)');
      ctx.skip();
      return;
    }
    const out = execFileSync('docker-compose', ['-f', 'docker-compose.yml', '-f', 'deploy/docker-compose.serving.yml', '--profile', 'sidecar', 'config'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, FLOTILLA_SERVING_TOKEN: 'flt.example' },
    });
    expect(out).toContain('serving:');
    expect(out).toContain('sidecar:');
  });
});
