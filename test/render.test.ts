// Golden files for what people read: the text summary with colour off, and --help. A change to the
// output shows up as a diff here; after checking it, rewrite them with UPDATE_GOLDEN=1 npx vitest run
// test/render.test.ts
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { basePolicy, evaluate } from '../gate/evaluate.ts'
import { exemptionsFrom, triagePageFrom } from '../gate/input.ts'
import { renderHelp, renderText, type TriageSource } from '../gate/render.ts'
import { ENVIRONMENT, OPTION_GROUPS, OPTIONS, VERSION, type Policy } from '../gate/vocabulary.ts'
import { cleanImageBody, SAMPLE_DIGEST, SAMPLE_IMAGE, sampleImageBody, triageRecord } from './support/documents.ts'

const NOW = Date.parse('2026-11-28T12:00:00Z')
const IMAGE = { reference: SAMPLE_IMAGE, digest: SAMPLE_DIGEST }

function expectGolden(name: string, actual: string): void {
  const path = new URL(`golden/${name}`, import.meta.url)
  if (process.env.UPDATE_GOLDEN) writeFileSync(path, actual)
  expect(existsSync(path), `no golden file ${name}: write it with UPDATE_GOLDEN=1`).toBe(true)
  expect(actual).toBe(readFileSync(path, 'utf8'))
}

const summary = (document: unknown, policy: Policy, triage: TriageSource = false) =>
  renderText(evaluate(document, policy), IMAGE, { color: false, policy, triage })

describe('golden files', () => {
  it('the reference sample at gate high', () => {
    expectGolden('sample-high.txt', summary(sampleImageBody(), basePolicy('high', NOW)))
  })

  it('a clean image', () => {
    expectGolden('clean.txt', summary(cleanImageBody(), basePolicy('critical', NOW)))
  })

  it('exemptions, triage, a score rule and notes on entries to review', () => {
    const exemptions = exemptionsFrom(
      {
        exemptions: [
          {
            id: 'CVE-2021-44228',
            package: 'org.apache.logging.log4j:log4j-core',
            reason: 'JNDI lookups disabled',
            expires: '2027-01-31',
            owner: 'team-a',
          },
          { id: 'CVE-2021-45046', reason: 'same mitigation', expires: '2026-12-05' },
          { id: 'CVE-2023-0464', reason: 'policy constraints unused', expires: '2026-11-01' },
          { id: 'CVE-2099-0001', reason: 'old base image', expires: '2027-06-30' },
        ],
      },
      'exemptions.yaml',
    )
    const { decisions } = triagePageFrom({
      Results: [
        triageRecord(
          'CVE-2023-0286',
          { Name: 'openssl', Version: '3.0.2-0ubuntu1.7' },
          'not_affected',
          'code_not_reachable',
        ),
      ],
    })
    const policy: Policy = { ...basePolicy('high', NOW), exemptions, triage: decisions, failOnScore: 6 }
    expectGolden('policy.txt', summary(sampleImageBody(), policy, 'store'))
  })

  it('--help', () => {
    expectGolden('help.txt', renderHelp().replace(VERSION, '<version>'))
  })
})

describe('--help fits the terminal', () => {
  it.each([80, 100, 120])('has no line over %i columns when the terminal is that wide', (width) => {
    const long = renderHelp(width)
      .split('\n')
      .filter((line) => line.length > width)
    expect(long).toEqual([])
  })

  it('lists every option once, under one of its groups, with its env name whole', () => {
    const flags = OPTION_GROUPS.flatMap(([, groupFlags]) => groupFlags)
    expect([...flags].sort()).toEqual(OPTIONS.map((option) => option.flag).sort())
    const help = renderHelp(80)
    for (const option of OPTIONS) {
      expect(help).toContain(`  ${option.value ? `${option.flag} ${option.value}` : option.flag} `)
      if (option.env) expect(help).toContain(`[env ${option.env}]`)
    }
  })

  it('pads the environment column past its longest name, so no name runs into its text', () => {
    const help = renderHelp(80)
    for (const { name } of ENVIRONMENT) expect(help).toMatch(new RegExp(`^  ${name}  +\\S`, 'm'))
  })
})
