// --fail-on-score and --unknown-as: blocking by CVSS score, and what an unknown severity counts as.
import { describe, expect, it } from 'vitest'
import { basePolicy, evaluate } from '../gate/evaluate.ts'
import { parseScore } from '../gate/input.ts'
import { EXIT, type Policy } from '../gate/vocabulary.ts'
import { SAMPLE_DIGEST } from './support/documents.ts'
import { useStoreFixture } from './support/fixture.ts'
import { answer } from './support/simulator.ts'

const fixture = useStoreFixture()
const { serve, gate } = fixture

const NOW = Date.parse('2026-11-28T12:00:00Z')

const policy = (fields: Partial<Policy>): Policy => ({ ...basePolicy('high', NOW), ...fields })

describe('score and unknown rules', () => {
  const body = (severity: string, score: number) => ({
    Digest: SAMPLE_DIGEST,
    Packages: [
      {
        Name: 'a',
        Version: '1',
        Vulnerabilities: [{ CVEID: 'CVE-1', Ratings: [{ Severity: severity, Score: score }] }],
      },
    ],
  })

  it('fails on a score at or above --fail-on-score whatever the severity', () => {
    expect(evaluate(body('Low', 9.1), policy({ gate: 'critical', failOnScore: 9 })).blocking[0]?.rule).toBe('score')
    expect(evaluate(body('Low', 8.9), policy({ gate: 'critical', failOnScore: 9 })).passed).toBe(true)
    expect(evaluate(body('Low', 9), policy({ gate: 'critical', failOnScore: 9 })).passed).toBe(false)
  })

  it("compares only CVSS scores: the store's MethodTypeID 1, 2 and 4, or a CVSS MethodType name", () => {
    const rated = (rating: Record<string, unknown>) => ({
      Digest: SAMPLE_DIGEST,
      Packages: [
        {
          Name: 'a',
          Version: '1',
          Vulnerabilities: [{ CVEID: 'CVE-1', Ratings: [{ Severity: 'Low', Score: 9.5, ...rating }] }],
        },
      ],
    })
    const blocks = (rating: Record<string, unknown>) =>
      !evaluate(rated(rating), policy({ gate: 'critical', failOnScore: 9 })).passed
    expect([1, 2, 4].map((MethodTypeID) => blocks({ MethodTypeID }))).toEqual([true, true, true])
    expect([5, 6, 0, 3].map((MethodTypeID) => blocks({ MethodTypeID }))).toEqual([false, false, false, false])
    expect(blocks({ MethodType: 'CVSSv31' })).toBe(true)
    expect(blocks({ MethodType: 'other' })).toBe(false)
    expect(blocks({})).toBe(true)
  })

  it.each(['0', '7.5', '10'])('accepts score %s', (text) => expect(parseScore(text)).toBe(Number(text)))
  it.each(['-1', '10.5', 'high', ''])('refuses score %j', (text) =>
    expect(() => parseScore(text)).toThrow(/from 0 to 10/),
  )

  it('counts unknown severities as --unknown-as says, never by default', () => {
    expect(evaluate(body('Negligible', 0), policy({ gate: 'high' })).passed).toBe(true)
    expect(evaluate(body('Negligible', 0), policy({ gate: 'high', unknownAs: 'high' })).blocking[0]?.rule).toBe(
      'unknown-as',
    )
    expect(evaluate(body('Negligible', 0), policy({ gate: 'critical', unknownAs: 'high' })).passed).toBe(true)
  })
})

describe('--fail-on-score and --unknown-as', () => {
  const body = {
    Digest: SAMPLE_DIGEST,
    Packages: [
      {
        Name: 'busybox',
        Version: '1.36',
        Vulnerabilities: [
          { CVEID: 'CVE-2026-1', Ratings: [{ Severity: 'Low', Score: 9.8 }] },
          { CVEID: 'CVE-2026-2', Ratings: [{ Severity: 'Negligible' }] },
        ],
      },
    ],
  }

  it('fails on a high score whatever the severity, from the flag and from POLICY_FAIL_ON_SCORE', async () => {
    await serve([answer.image(body)])
    const fromFlag = await gate(['--fail-on-score', '9'], { GATE: 'critical' })
    expect(fromFlag.code).toBe(EXIT.VIOLATION)
    expect(fromFlag.stdout).toMatch(/LOW +9\.8 +CVE-2026-1 +busybox@1\.36 +\(by score\)/)
    expect((await gate([], { GATE: 'critical', POLICY_FAIL_ON_SCORE: '9.9' })).code).toBe(EXIT.PASS)
    expect((await gate(['--fail-on-score', '11'])).code).toBe(EXIT.USAGE)
  })

  it('counts unknown severities as asked, from the flag and from POLICY_UNKNOWN_AS', async () => {
    await serve([answer.image(body)])
    const strict = await gate(['--unknown-as', 'high'], { GATE: 'high' })
    expect(strict.code).toBe(EXIT.VIOLATION)
    expect(strict.stdout).toMatch(/UNKNOWN +- +CVE-2026-2 +busybox@1\.36 +\(unknown counted per --unknown-as\)/)
    expect((await gate([], { GATE: 'high', POLICY_UNKNOWN_AS: 'medium' })).code).toBe(EXIT.PASS)
    expect((await gate([], { POLICY_UNKNOWN_AS: 'severe' })).stderr).toContain(
      'POLICY_UNKNOWN_AS "severe" is not a severity: use low, medium, high, critical or ignore',
    )
  })
})
