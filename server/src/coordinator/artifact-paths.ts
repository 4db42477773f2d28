/** URL paths (relative to the server) of a version's tfjs artifacts, as the registry routes serve them. */
export function artifactPaths(model: string, version: number): { modelJson: string; weights: string } {
  const base = `/api/v1/models/${encodeURIComponent(model)}/versions/${version}`;
  return { modelJson: `${base}/model.json`, weights: `${base}/weights.bin` };
}
