// gate/vocabulary.ts: the severity spellings and the tally of a vulnerability's ratings.
import { describe, expect, it } from 'vitest'
import { addRating, mergeTally, newTally, normaliseSeverity } from '../gate/vocabulary.ts'

describe('severities', () => {
  it.each([
    ['Critical', 'critical'],
    ['HIGH', 'high'],
    [' Important ', 'high'],
    ['Moderate', 'medium'],
    ['low', 'low'],
    ['Negligible', 'unknown'],
    [7, 'unknown'],
  ])('reads %j as %s', (raw, severity) => expect(normaliseSeverity(raw)).toBe(severity))

  it('tallies ratings: the highest severity and score, every severity as a bit, and merges two tallies', () => {
    const tally = newTally()
    addRating(tally, 'medium', 5.5)
    addRating(tally, 'high', null)
    addRating(tally, 'unknown', 9.1)
    expect(tally).toEqual({ severity: 'high', score: 9.1, severities: 0b1101 })
    const other = newTally()
    addRating(other, 'critical', 4)
    mergeTally(tally, other)
    expect(tally).toEqual({ severity: 'critical', score: 9.1, severities: 0b11101 })
  })
})
