// The README documents what the code does: its options and exit-code tables are the ones the code
// generates from OPTIONS, ENVIRONMENT and EXIT_CODES, row by row.
import { readdirSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { renderExitCodeTable, renderOptionsTable } from '../gate/render.ts'
import { NO_VERDICT_CODES, USAGE_CODES } from '../gate/vocabulary.ts'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8').split('\n')

/** The table in the README that starts with this header row, up to its last row. */
function tableAt(header: string): string[] {
  const start = readme.indexOf(header)
  expect(start, `the README has no table headed ${header}`).toBeGreaterThanOrEqual(0)
  const end = readme.findIndex((line, index) => index > start && !line.startsWith('|'))
  return readme.slice(start, end === -1 ? undefined : end)
}

describe('README', () => {
  it.each([
    ['options', renderOptionsTable()],
    ['exit codes', renderExitCodeTable()],
  ])('holds the %s table the code generates, row by row', (_name, generated) => {
    expect(tableAt(generated[0]!)).toEqual(generated)
  })

  it('names every test file in its table of tests, and no file that is not there', () => {
    const listed = tableAt('| file | covers |')
      .slice(2)
      .flatMap((row) => [...row.split(' | ')[0]!.matchAll(/`([\w/.-]+\.test\.ts)`/g)].map((match) => match[1]!))
    const files = readdirSync(new URL('.', import.meta.url), { recursive: true, encoding: 'utf8' }).filter((file) =>
      file.endsWith('.test.ts'),
    )
    expect([...listed].sort()).toEqual([...files].sort())
  })

  it("lists every error code of the JSON document, and no other: no verdict's, then exit 2's", () => {
    const row = readme.find((line) => line.startsWith('| `error` |')) ?? ''
    const [noVerdict, usage] = row.split('is one of')[1]!.split('on exit 2')
    const codes = (text: string) => [...text.matchAll(/`(\w+)`/g)].map((match) => match[1])
    expect(codes(noVerdict!)).toEqual([...NO_VERDICT_CODES])
    expect(codes(usage!)).toEqual([...USAGE_CODES])
  })
})
