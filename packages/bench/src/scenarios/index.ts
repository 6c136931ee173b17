import type { ScenarioDefinition } from '../scenario.ts';
import { backendsScenario } from './backends.ts';
import { batchScenario } from './batch.ts';
import { capacityScenario } from './capacity.ts';
import { contextScenario } from './context.ts';
import { gptScenario } from './gpt.ts';
import { headsScenario } from './heads.ts';
import { pagedScenario } from './paged.ts';
import { peerOrtNodeScenario, peerOrtWebScenario } from './peer-ort.ts';
import { peerTorchScenario } from './peer-torch.ts';
import { prefillScenario } from './prefill.ts';
import { quantizedScenario } from './quantized.ts';
import { seedScenario } from './seed.ts';
import { steadyScenario } from './steady.ts';
import { strategiesScenario } from './strategies.ts';

/** Every scenario, in the order a full run takes them (the peers read the seed, context and gpt results). */
export const scenarios: readonly ScenarioDefinition[] = [
  seedScenario,
  contextScenario,
  capacityScenario,
  headsScenario,
  batchScenario,
  prefillScenario,
  steadyScenario,
  strategiesScenario,
  pagedScenario,
  quantizedScenario,
  backendsScenario,
  gptScenario,
  peerTorchScenario,
  peerOrtWebScenario,
  peerOrtNodeScenario,
];
