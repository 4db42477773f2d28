export { PRESETS, buildPreset, type PresetName, type PresetInfo } from './presets.js';
export { manifestOf, flatWeights, setFlatWeights, specOf, modelFromSpec } from './model-spec-tf.js';
export { resolveBackend, ensureTrainableBackend, setWasmPaths, type Platform } from './backend.js';
export { type Logger, silentLogger } from './logger.js';
