// Fails when package-lock.json has drifted from the manifests, so that `npm ci` (the Dockerfile,
// most CI pipelines) would refuse it. `npm ci --dry-run` resolves the lock against every
// package.json without touching node_modules and takes seconds.
import { spawnSync } from 'node:child_process';

const result = spawnSync('npm', ['ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund'], {
  encoding: 'utf8',
  shell: process.platform === 'win32',
});
if (result.status !== 0) {
  const reasons = `${result.stdout}\n${result.stderr}`
    .split('\n')
    .filter((line) => /Missing:|Invalid:|in sync with/.test(line))
    .join('\n');
  console.error(`package-lock.json is out of step with package.json: npm ci would fail.\n${reasons}\n` +
    'Run `npm install` and commit the updated package-lock.json.');
  process.exit(1);
}
console.log('package-lock.json: npm ci accepts it');
