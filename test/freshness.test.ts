// --newer-than: waiting until the store holds a scan report generated at or after a time.
import { describe, expect, it } from 'vitest'
import { newestReportFrom, parseNewerThan } from '../gate/input.ts'
import { EXIT } from '../gate/vocabulary.ts'
import { cleanImageBody, SAMPLE_DIGEST, scanReport } from './support/documents.ts'
import { useStoreFixture } from './support/fixture.ts'
import { answer } from './support/simulator.ts'

const fixture = useStoreFixture()
const { serve, gate } = fixture

const NOW = Date.parse('2026-11-28T12:00:00Z')

describe('freshness', () => {
  it('reads RFC 3339 times and durations before now', () => {
    expect(parseNewerThan('2026-11-28T09:00:00Z', NOW)).toBe(Date.parse('2026-11-28T09:00:00Z'))
    expect(parseNewerThan('2h', NOW)).toBe(NOW - 7_200_000)
    expect(() => parseNewerThan('yesterday', NOW)).toThrow(/neither an RFC 3339 time/)
    for (const impossible of [
      '2026-11-28T25:00:00Z',
      '2026-13-01T00:00:00Z',
      '2026-02-30T10:00:00Z',
      '2026-11-28T10:00:60Z',
      '2026-11-28T10:60:00Z',
    ]) {
      expect(() => parseNewerThan(impossible, NOW), impossible).toThrow(
        `--newer-than "${impossible}" is not a real time`,
      )
    }
  })

  it('finds the newest report on a page', () => {
    expect(
      newestReportFrom({ Results: [{ GeneratedAt: '2026-11-28T10:00:00Z' }, { GeneratedAt: '2026-11-28T11:00:00Z' }] }),
    ).toBe(Date.parse('2026-11-28T11:00:00Z'))
    expect(newestReportFrom({ Results: [] })).toBeUndefined()
  })
})

describe('--newer-than', () => {
  it('waits until the store holds a scan report generated at or after the time, then judges', async () => {
    const since = new Date(Date.now() - 60_000).toISOString()
    await serve([answer.image(cleanImageBody())], {
      reports: {
        [SAMPLE_DIGEST]: [
          answer.notFound(),
          answer.image({
            Count: 1,
            CurrentPage: 1,
            LastPage: 1,
            PageSize: 20,
            Results: [scanReport('2020-01-01T00:00:00Z')],
          }),
          answer.image({
            Count: 2,
            Results: [scanReport(new Date().toISOString()), scanReport('2020-01-01T00:00:00Z')],
          }),
        ],
      },
    })
    const run = await gate(['--newer-than', since])
    expect(run.code).toBe(EXIT.PASS)
    expect(run.stderr).toMatch(/the newest scan report was generated 2020-01-01T00:00:00\.000Z, before .*; attempt 2/)
    expect(run.stderr).toContain(`found a scan report of ${SAMPLE_DIGEST} generated at or after ${since}`)
    expect(fixture.store.requests.map((request) => request.path.split('?')[0])).toEqual([
      '/api/v1/reports',
      '/api/v1/reports',
      '/api/v1/reports',
      `/api/v1/images/${SAMPLE_DIGEST}`,
    ])
  })

  it('exits 3 at the deadline when only stale reports exist (POLICY_NEWER_THAN as a duration)', async () => {
    await serve([answer.image(cleanImageBody())], {
      reports: { [SAMPLE_DIGEST]: [answer.image({ Results: [scanReport('2020-01-01T00:00:00Z')] })] },
    })
    const run = await gate(['--timeout', '1s'], { POLICY_NEWER_THAN: '2h' })
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toMatch(
      /no verdict: timed out after 1s waiting for a scan report of sha256:\S+ generated at or after \S+ \(\d+ requests; last: the newest scan report was generated 2020/,
    )
  })
})
