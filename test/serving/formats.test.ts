import { onnxFormat, studentFormat, tfjsFormat } from './format-fixtures.js';
import { servingContract } from './format-contract.js';

// One file for the three formats: one worker loads tfjs (and onnxruntime) once and runs the
// formats one after another, each on its own server (format-contract.ts).
for (const format of [tfjsFormat, onnxFormat, studentFormat]) servingContract(format);
