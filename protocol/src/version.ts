/** Bumped on any incompatible change to events or payloads. Checked at hello; mismatches are refused. */
export const PROTOCOL_VERSION = 1;
