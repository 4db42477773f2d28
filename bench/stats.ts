/**
 * Summary statistics shared by the benchmarks (bench/*.ts): the same definitions the FL core and
 * the simulator use (server/src/fl/stats.ts), re-exported so benches import from one place.
 */
export { median } from '@flotilla/server/stats';
