import { ValueError } from '@kvkit/tensor-utils';
import { describe, expect, test } from 'vitest';
import { runBenchmarks } from './run.ts';

describe('runBenchmarks: which scenarios', () => {
  test('only: [] names no scenario: a ValueError, and nothing runs', async () => {
    const progress: string[] = [];
    const run = runBenchmarks({
      only: [],
      quick: true,
      // Before the fix `only: []` ran every scenario: stop at the first progress line.
      onProgress: (line) => {
        progress.push(line);
        throw new Error(`a scenario started: ${line}`);
      },
    });
    await expect(run).rejects.toThrow(ValueError);
    await expect(runBenchmarks({ only: [] })).rejects.toThrow(/only: \[\] names no scenario/);
    expect(progress).toEqual([]);
  });

  test('an unknown id is a ValueError naming it and the known ones', async () => {
    await expect(runBenchmarks({ only: ['seed', 'nope'] })).rejects.toThrow(
      /unknown scenario\(s\) nope \(known: seed, /,
    );
  });
});
