/** What the SDK logs through. Defaults to silence; pass `console` for plain output. */
export interface Logger {
  info(msg: string, ...rest: unknown[]): void;
  warn(msg: string, ...rest: unknown[]): void;
  error(msg: string, ...rest: unknown[]): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
