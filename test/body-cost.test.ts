// gate/body-cost.ts: what a body costs to evaluate, checked before it is parsed (test/e2e/hostile-input.test.ts
// runs the bombs against the built gate under a small heap).
import { describe, expect, it } from 'vitest'
import { checkFits, evaluationCost, WORST_COST_PER_BYTE } from '../gate/body-cost.ts'
import { NoVerdictError } from '../gate/vocabulary.ts'

const bytes = (text: string) => Buffer.from(text)

describe('what a body costs', () => {
  it('counts the text four times over and every structural byte, never more than the worst shape', () => {
    expect(evaluationCost(bytes('"abcd"'))).toBe(24)
    expect(evaluationCost(bytes('[{},{}]'))).toBe(4 * 7 + 96 * 3 + 48)
    const bomb = bytes('[],'.repeat(1000))
    expect(evaluationCost(bomb)).toBeLessThanOrEqual(bomb.length * WORST_COST_PER_BYTE)
  })

  it('lets a body through that fits even at its worst shape without counting, and refuses one that does not fit', () => {
    expect(() => checkFits(bytes('[],'.repeat(1000)), 10 * 2 ** 20, 'x')).not.toThrow()
    const refused = () => checkFits(bytes('[],'.repeat(100_000)), 2 ** 20, '--input bomb.json')
    expect(refused).toThrow(NoVerdictError)
    expect(refused).toThrow(/--input bomb\.json \(1 MiB\) needs about \d+ MiB to evaluate, more than the 1 MiB/)
  })
})
