import { NoVerdictError } from './vocabulary.ts'

// ---------------------------------------------------------------------------------------------
// Pure functions: what a body costs to evaluate

/** Heap bytes JSON.parse spends per byte of text beyond the text itself: an object or a list, a separator's slot. */
export const PARSE_COST = new Uint8Array(256)
PARSE_COST[0x7b] = PARSE_COST[0x5b] = 96 // { and [
PARSE_COST[0x2c] = 48 // ,
/** The most any body can cost per byte: the text four times over, and `[],` repeated (96 + 48 in 3 bytes). */
export const WORST_COST_PER_BYTE = 4 + 48

/**
 * About how many bytes reading, parsing and evaluating a JSON body takes at its peak: the body as bytes and
 * as a string (two bytes a character at worst), the parsed strings, and PARSE_COST for each structural byte
 * (counted inside strings too: an over-estimate, on the safe side, at a third of the cost of tracking them;
 * a table look-up per byte, about 5 ms per 10 MB). Calibrated by `npm run bench` in a container with the
 * Task's memory limit: every body shape it estimates to fit was evaluated there, and `[{},{},...]` and its
 * kin are refused before they can abort the process.
 */
export function evaluationCost(body: Uint8Array): number {
  let structure = 0
  for (let i = 0; i < body.length; i++) structure += PARSE_COST[body[i]!]!
  return 4 * body.length + structure
}

/** Of what memory is left, the share a body may take: the garbage collector needs room to work in. */
export const MEMORY_HEADROOM = 0.8

/**
 * A body that would not fit in the memory left is refused (exit 3) before it is parsed, never an out-of-memory abort.
 */
export function checkFits(body: Uint8Array, available: number, what: string): void {
  const budget = available * MEMORY_HEADROOM
  if (body.length * WORST_COST_PER_BYTE <= budget) return // fits at its worst shape: no need to look
  const needed = evaluationCost(body)
  if (needed <= budget) return
  const mib = (value: number) => `${Math.ceil(value / 2 ** 20)} MiB`
  throw new NoVerdictError(
    'BODY_TOO_LARGE',
    `${what} (${mib(body.length)}) needs about ${mib(needed)} to evaluate, more than the ${mib(available)} this ` +
      `process may still use: raise the step's memory limit (docs/operations.md, Memory)`,
  )
}
