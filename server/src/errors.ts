/**
 * Server view of the one error registry (defined with the wire protocol in @flotilla/protocol so that
 * devices and servers share it). Import errors from here inside the server.
 */
export { AppError, ERROR_REGISTRY, ERROR_CODES, toWireError, isErrorCode, type ErrorCode, type WireError } from '@flotilla/protocol';
