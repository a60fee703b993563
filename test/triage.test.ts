// --triage: the store's triage decisions, read page by page, and what they suppress.
import { describe, expect, it } from 'vitest'
import { basePolicy, evaluate } from '../gate/evaluate.ts'
import { triagePageFrom } from '../gate/input.ts'
import { EXIT, type Policy } from '../gate/vocabulary.ts'
import { cleanImageBody, SAMPLE_DIGEST, sampleImageBody, triageRecord } from './support/documents.ts'
import { useStoreFixture } from './support/fixture.ts'
import { answer } from './support/simulator.ts'

const fixture = useStoreFixture()
const { serve, gate } = fixture

const NOW = Date.parse('2026-11-28T12:00:00Z')

const policy = (fields: Partial<Policy>): Policy => ({ ...basePolicy('high', NOW), ...fields })

describe('triage', () => {
  const openssl = { Name: 'openssl', Version: '3.0.2-0ubuntu1.7' }

  it.each([
    ['not_affected', true],
    ['false_positive', true],
    ['resolved', true],
    ['resolved_with_pedigree', true],
    ['in_triage', false],
    ['exploitable', false],
  ])('a finding triaged %s is suppressed: %s', (state, suppressed) => {
    const { decisions } = triagePageFrom({
      Results: [triageRecord('CVE-2023-0286', openssl, state, 'code_not_reachable')],
      LastPage: 1,
    })
    const result = evaluate(sampleImageBody(), policy({ triage: decisions }))
    expect(result.suppressed.some((finding) => finding.id === 'CVE-2023-0286')).toBe(suppressed)
    if (suppressed)
      expect(result.suppressed[0]?.suppressedBy).toEqual({ kind: 'triage', state, justification: 'code_not_reachable' })
  })

  it('reads the current (last) analysis of a record and only for its package', () => {
    const { decisions } = triagePageFrom({
      Results: [triageRecord('CVE-2023-0286', { Name: 'other', Version: '1' }, 'not_affected')],
      LastPage: 1,
    })
    expect(decisions).toEqual([
      { id: 'CVE-2023-0286', state: 'not_affected', package: { name: 'other', version: '1' } },
    ])
    expect(evaluate(sampleImageBody(), policy({ triage: decisions })).suppressed).toEqual([])
  })

  it('refuses a triage page that is not a page', () => {
    // Named as the triage page, not as the image report: malformed() takes the document's name.
    expect(() => triagePageFrom([])).toThrow('the triage page is malformed: it is a list, expected an object')
    expect(() => triagePageFrom({ Results: [{ Analysis: 'x' }] })).toThrow(
      'the triage page is malformed: Results[0].Analysis is a string, expected a list',
    )
  })
})

describe('--triage', () => {
  const openssl = { Name: 'openssl', Version: '3.0.2-0ubuntu1.7' }
  const filler = Array.from({ length: 150 }, (_, i) =>
    triageRecord(`CVE-2020-${1000 + i}`, { Name: 'zlib', Version: '1' }, 'in_triage'),
  )

  it('reads every page of triage and suppresses not_affected findings, showing the justification', async () => {
    await serve([answer.image(sampleImageBody())], {
      triage: {
        [SAMPLE_DIGEST]: [
          ...filler,
          triageRecord('CVE-2023-0286', openssl, 'not_affected', 'code_not_reachable'),
          triageRecord('CVE-2023-0464', openssl, 'exploitable'),
        ],
      },
    })
    const run = await gate(['--triage'], { GATE: 'high' })
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(
      fixture.store.requests
        .filter((request) => request.path.startsWith('/api/v1/triage'))
        .map((request) => new URL(request.path, 'https://x').searchParams.get('page')),
    ).toEqual(['1', '2'])
    expect(run.stdout).toContain('Policy store triage (152 records)')
    expect(run.stdout).toMatch(/CVE-2023-0286 +openssl@3\.0\.2-0ubuntu1\.7 +triage not_affected: code_not_reachable/)
    expect(run.stdout).toMatch(/Blocking findings[^]*CVE-2023-0464/)
  })

  it('says so, and judges without triage, on a store that has no triage endpoint (POLICY_TRIAGE=true)', async () => {
    await serve([answer.image(cleanImageBody())])
    const run = await gate([], { POLICY_TRIAGE: 'true' })
    expect(run.code).toBe(EXIT.PASS)
    expect(run.stderr).toContain('--triage: this store has no triage endpoint (404 on /api/v1/triage')
  })
})
