import { execFileSync } from 'node:child_process';
import { cpus, platform, release } from 'node:os';
import type { BackendInfo } from '@kvkit/tensor-utils';
import { version_core as tfjsVersion } from '@tensorflow/tfjs-core';
import type { Environment } from './report/schema.ts';

/** What a reader needs to compare two reports: where and on what they were measured. */
export function environment(backend: BackendInfo, quick: boolean): Environment {
  const cpu = cpus();
  return {
    node: process.version,
    backend: backend.backend,
    wasmBinary: backend.wasmBinary,
    tfjsVersion: tfjsVersion,
    cpuModel: cpu[0]?.model.trim() ?? 'unknown',
    cpuCount: cpu.length,
    platform: `${platform()} ${release()}`,
    gitCommit: gitCommit(),
    date: new Date().toISOString(),
    quick,
  };
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return null;
  }
}
