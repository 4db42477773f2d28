import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CliUsageError, DEMO_DEFAULTS, parseCliOptions, type SimOptions } from '../../simulator/src/cli-options.js';

const BIN = fileURLToPath(new URL('../../scripts/dev/flotilla-sim.mjs', import.meta.url));

function parse(args: string[]): SimOptions {
  const o = parseCliOptions(args);
  if (o === 'help') throw new Error('unexpected help');
  return o;
}

function usageError(args: string[]): string {
  try {
    parseCliOptions(args);
  } catch (err) {
    expect(err).toBeInstanceOf(CliUsageError);
    return (err as Error).message;
  }
  throw new Error(`no error for ${args.join(' ')}`);
}

describe('flotilla-sim flags', () => {
  it('has the documented defaults', () => {
    const o = parse([]);
    expect(o).toMatchObject({ clients: 100, clientsPerRound: 10, rounds: 200, model: 'mlp', partition: 'iid', epochs: 1, batchSize: 10, lr: 0.1, seed: 1, dropout: 0, targetAccuracy: 0.97, demo: false });
    expect(o.url).toBeUndefined();
  });

  it('--demo is the README demo and explicit flags override it', () => {
    expect(parse(['--demo'])).toMatchObject({ ...DEMO_DEFAULTS, demo: true });
    expect(parse(['--demo', '--rounds', '5', '--lr', '0.05'])).toMatchObject({ rounds: 5, lr: 0.05, examplesPerClient: 600 });
  });

  it('parses every flag', () => {
    const o = parse([
      '--url', 'http://127.0.0.1:8080', '--token', 'dev', '--admin-token', 'adm', '--task', 't1', '--wait-timeout', '60',
      '--clients', '50', '--clients-per-round', '5', '--rounds', '7', '--model', 'cnn', '--partition', 'dirichlet',
      '--alpha', '0.1', '--epochs', '2', '--batch-size', '32', '--lr', '0.02', '--seed', '9', '--target-accuracy', '0.9',
      '--dropout', '0.2', '--straggler', '0.1:1500', '--out', 'x/y', '--workers', '3', '--deadline-ms', '5000',
      '--eval-clients', '0', '--examples-per-client', '100', '--train-limit', '5000', '--test-limit', '500', '--quiet',
    ]);
    expect(o).toMatchObject({
      url: 'http://127.0.0.1:8080', token: 'dev', adminToken: 'adm', task: 't1', waitTimeout: 60, clients: 50, clientsPerRound: 5, rounds: 7,
      model: 'cnn', partition: 'dirichlet', alpha: 0.1, epochs: 2, batchSize: 32, lr: 0.02, seed: 9, targetAccuracy: 0.9,
      dropout: 0.2, straggler: { probability: 0.1, delayMs: 1500 }, out: 'x/y', workers: 3, deadlineMs: 5000, evalClients: 0,
      examplesPerClient: 100, trainLimit: 5000, testLimit: 500, quiet: true,
    });
    expect(parseCliOptions(['-h'])).toBe('help');
  });

  it.each([
    [['--clients', 'many'], '--clients must be a number'],
    [['--clients', '0'], '--clients must be at least 1'],
    [['--clients', '2.5'], '--clients must be an integer'],
    [['--model', 'rnn'], '--model must be mlp or cnn'],
    [['--partition', 'zipf'], '--partition must be one of iid, shards, dirichlet'],
    [['--dropout', '1'], '--dropout must be in [0, 1)'],
    [['--straggler', '0.5'], '--straggler must look like P:MS'],
    [['--target-accuracy', '97'], '--target-accuracy must be in (0, 1]'],
    [['--alpha', '0'], '--alpha must be > 0'],
    [['--url', 'ftp://x'], '--url must be an http(s) URL'],
    [['--url', 'http://127.0.0.1:1'], '--url needs --token'],
    [['--token', 'x'], 'only make sense with --url'],
    [['--clients', '5', '--clients-per-round', '6'], 'must not exceed --clients'],
    [['--clients', '200', '--examples-per-client', '600'], 'needs more than the 60000 training rows'],
    [['--clients', '20', '--train-limit', '10'], 'exceeds the 10 training rows'],
    [['--frobnicate'], "Unknown option '--frobnicate'"],
    [['stray'], 'Unexpected argument'],
  ])('rejects %j', (args, message) => {
    expect(usageError(args)).toContain(message);
  });

  it('the bin prints a clear message and exits 2 on bad flags, 0 with --help', () => {
    const bad = spawnSync(process.execPath, [BIN, '--clients', 'lots', '--model', 'rnn'], { encoding: 'utf8', timeout: 60_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('flotilla-sim: --clients must be a number');
    expect(bad.stderr).toContain('--model must be mlp or cnn');
    const help = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8', timeout: 60_000 });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: flotilla-sim');
    expect(help.stdout).toContain('--straggler P:MS');
  });
});
