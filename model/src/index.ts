export { PRESETS, buildPreset, type PresetName, type PresetInfo } from './presets.js';
export { manifestOf, flatWeights, setFlatWeights, readFlatWeights, specOf, modelFromSpec } from './model-spec-tf.js';
export { resolveBackend, ensureTrainableBackend, setWasmPaths, type Platform } from './backend.js';
export { type Logger, silentLogger } from './logger.js';
export { travelFlags, inspectLayersModel, parseModelJson, buildTopology, applyTrainable, specOfBuilt, respec, type InspectedModel } from './model-import.js';
