// For this package's own tests: both ONNX Runtime engines are its devDependencies, so here a
// skipped engine is a bug, not a missing install.
import { loadOrtEngine, type OrtEngine, type OrtEngineName } from '../ort-engines.ts';

/** Loads onnxruntime-web and onnxruntime-node; throws the skip reason if either cannot load. */
export async function loadInstalledEngines(): Promise<Record<OrtEngineName, OrtEngine>> {
  const engines: Partial<Record<OrtEngineName, OrtEngine>> = {};
  for (const id of ['ort-web', 'ort-node'] as const) {
    const e = await loadOrtEngine(id);
    if ('skipped' in e) throw new Error(e.skipped);
    engines[id] = e;
  }
  return engines as Record<OrtEngineName, OrtEngine>;
}
