import { describe, expect, it } from 'vitest';
import { parseServeConfig } from '../../server/src/config.js';

describe('flotilla serve configuration', () => {
  it('reads flags over environment over defaults', () => {
    const c = parseServeConfig(['--port', '9000', '--public-inference'], { FLOTILLA_PORT: '1', FLOTILLA_PUBLIC_METRICS: '1' });
    expect(c.port).toBe(9000);
    expect(c.publicInference).toBe(true);
    expect(c.publicMetrics).toBe(true);
    expect(c.host).toBe('127.0.0.1');
    expect(parseServeConfig([], { FLOTILLA_PUBLIC_INFERENCE: 'true' }).publicInference).toBe(true);
    expect(parseServeConfig([], {}).publicInference).toBe(false);
    // trustProxy: off by default; true, a hop count or proxy addresses, from the flag or FLOTILLA_TRUST_PROXY.
    expect(parseServeConfig([], {}).trustProxy).toBe(false);
    expect(parseServeConfig(['--trust-proxy', 'true'], {}).trustProxy).toBe(true);
    expect(parseServeConfig([], { FLOTILLA_TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(parseServeConfig([], { FLOTILLA_TRUST_PROXY: '10.0.0.0/8,loopback' }).trustProxy).toBe('10.0.0.0/8,loopback');
    expect(parseServeConfig([], { FLOTILLA_MAX_UPDATE_BYTES: '1048576' }).maxUpdateBytes).toBe(1 << 20);
    // The report upload channel: on unless --no-report-uploads or FLOTILLA_REPORT_UPLOADS=0/false.
    expect(parseServeConfig([], {}).reportUploads).toBe(true);
    expect(parseServeConfig(['--no-report-uploads'], {}).reportUploads).toBe(false);
    expect(parseServeConfig([], { FLOTILLA_REPORT_UPLOADS: '0' }).reportUploads).toBe(false);
    expect(parseServeConfig([], { FLOTILLA_REPORT_UPLOADS: '1' }).reportUploads).toBe(true);
    // Which receiver reads them: the fastify route unless --report-receiver direct / FLOTILLA_REPORT_RECEIVER=direct.
    expect(parseServeConfig([], {}).reportReceiver).toBe('fastify');
    expect(parseServeConfig(['--report-receiver', 'direct'], {}).reportReceiver).toBe('direct');
    expect(parseServeConfig([], { FLOTILLA_REPORT_RECEIVER: 'direct' }).reportReceiver).toBe('direct');
    expect(parseServeConfig(['--report-receiver', 'fastify'], { FLOTILLA_REPORT_RECEIVER: 'direct' }).reportReceiver).toBe('fastify');
    expect(() => parseServeConfig(['--report-receiver', 'nginx'], {})).toThrow(expect.objectContaining({ code: 'FL_ERR_CONFIG_INVALID' }));
  });

  it('reads the device cap and the client retention, and refuses bad values', () => {
    expect(parseServeConfig([], {})).toMatchObject({ maxDevicesPerToken: 10_000, clientRetentionDays: 90 });
    const c = parseServeConfig(['--max-devices-per-token', '50'], { FLOTILLA_CLIENT_RETENTION_DAYS: '0' });
    expect(c).toMatchObject({ maxDevicesPerToken: 50, clientRetentionDays: 0 });
    expect(parseServeConfig([], { FLOTILLA_MAX_DEVICES_PER_TOKEN: '7', FLOTILLA_CLIENT_RETENTION_DAYS: '1.5' })).toMatchObject({ maxDevicesPerToken: 7, clientRetentionDays: 1.5 });
    for (const args of [['--max-devices-per-token', '0'], ['--max-devices-per-token', '2.5'], ['--client-retention-days=-1']]) {
      expect(() => parseServeConfig(args, {})).toThrow(expect.objectContaining({ code: 'FL_ERR_CONFIG_INVALID' }));
    }
  });

  it('accepts multi-host MongoDB replica-set URLs and refuses bad values with a code', () => {
    const url = 'mongodb://a.example:27017,b.example:27017/flotilla?replicaSet=rs0';
    expect(parseServeConfig(['--mongodb-url', url], {}).mongodbUrl).toBe(url);
    expect(() => parseServeConfig(['--mongodb-url', 'http://x'], {})).toThrow(expect.objectContaining({ code: 'FL_ERR_CONFIG_INVALID' }));
    expect(() => parseServeConfig(['--port', '70000'], {})).toThrow(expect.objectContaining({ code: 'FL_ERR_CONFIG_INVALID' }));
    expect(() => parseServeConfig(['--nope'], {})).toThrow();
  });
});
