/**
 * Bumped on any incompatible change to events or payloads. Checked in the connection handshake
 * (`auth.protocolVersion`); mismatches are refused with FL_ERR_PROTO_VERSION_MISMATCH.
 * 2: credentials moved from the `hello` event into the socket.io handshake `auth`; the server
 *    answers with a `session` event; `fit:ready` is required before `fit:report`.
 */
export const PROTOCOL_VERSION = 2;
