export { PRESETS, buildPreset, type PresetName, type PresetInfo } from './presets.js';
export { manifestOf, flatWeights, setFlatWeights, readFlatWeights, specOf, modelFromSpec, tfjsSignature } from './model-spec-tf.js';
export { resolveBackend, ensureTrainableBackend, setWasmPaths, type Platform } from './backend.js';
export { type Logger, silentLogger } from './logger.js';
export { travelFlags, inspectLayersModel, parseModelJson, buildTopology, applyTrainable, specOfBuilt, respec, type InspectedModel, type ImportPurpose } from './model-import.js';
export { readOnnx, OnnxFormatError, ONNX_ELEM_TYPES, type OnnxInfo, type OnnxTensorInfo } from './onnx/onnx-read.js';
export { writeOnnx, denseToOnnx, type OnnxGraphSpec, type OnnxNode, type OnnxTensorSpec, type OnnxInitializer, type DenseLayer } from './onnx/onnx-write.js';
export { tfjsToOnnx } from './onnx/tfjs-to-onnx.js';
export { parseIdxImages, parseIdxLabels } from './idx.js';
