/** L2 clipping lives with the tensor helpers so devices (client-side DP) and the server share it. */
export { clipInPlace } from '@flotilla/protocol';
