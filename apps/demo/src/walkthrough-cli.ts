import { runWalkthrough } from './walkthrough.ts';

await runWalkthrough({ timeit: process.argv.includes('--timeit') });
