// The documentation says what the code does: the options and exit-code tables in docs/usage.md are the ones the
// code generates from OPTIONS, ENVIRONMENT and EXIT_CODES, row by row; the JSON error codes in docs/outputs.md
// and the test files in docs/development.md are the code's; every link between the pages leads to a heading.
import { readdirSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { renderExitCodeTable, renderOptionsTable } from '../gate/render.ts'
import { NO_VERDICT_CODES, USAGE_CODES } from '../gate/vocabulary.ts'

const PAGES = ['README.md', ...readdirSync(new URL('../docs/', import.meta.url)).map((page) => `docs/${page}`)]
const textOf = (page: string) => readFileSync(new URL(`../${page}`, import.meta.url), 'utf8')

/** The table in a page that starts with this header row, up to its last row. */
function tableAt(page: string, header: string): string[] {
  const lines = textOf(page).split('\n')
  const start = lines.indexOf(header)
  expect(start, `${page} has no table headed ${header}`).toBeGreaterThanOrEqual(0)
  const end = lines.findIndex((line, index) => index > start && !line.startsWith('|'))
  return lines.slice(start, end === -1 ? undefined : end)
}

/** GitHub's anchor of a heading. */
const slug = (heading: string) =>
  heading
    .replace(/^#+\s*/, '')
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-')

describe('the documentation', () => {
  it.each([
    ['options', renderOptionsTable()],
    ['exit codes', renderExitCodeTable()],
  ])('holds the %s table the code generates, row by row', (_name, generated) => {
    expect(tableAt('docs/usage.md', generated[0]!)).toEqual(generated)
  })

  it('names every test file in its table of tests, and no file that is not there', () => {
    const listed = tableAt('docs/development.md', '| file | covers |')
      .slice(2)
      .flatMap((row) => [...row.split(' | ')[0]!.matchAll(/`([\w/.-]+\.test\.ts)`/g)].map((match) => match[1]!))
    const files = readdirSync(new URL('.', import.meta.url), { recursive: true, encoding: 'utf8' }).filter((file) =>
      file.endsWith('.test.ts'),
    )
    expect([...listed].sort()).toEqual([...files].sort())
  })

  it("lists every error code of the JSON document, and no other: no verdict's, then exit 2's", () => {
    const row =
      textOf('docs/outputs.md')
        .split('\n')
        .find((line) => line.startsWith('| `error` |')) ?? ''
    const [noVerdict, usage] = row.split('is one of')[1]!.split('on exit 2')
    const codes = (text: string) => [...text.matchAll(/`(\w+)`/g)].map((match) => match[1])
    expect(codes(noVerdict!)).toEqual([...NO_VERDICT_CODES])
    expect(codes(usage!)).toEqual([...USAGE_CODES])
  })

  it('links only to headings that exist, across the README and docs/', () => {
    const anchors = new Map(
      PAGES.map((page) => [
        page,
        new Set(
          textOf(page)
            .split('\n')
            .filter((line) => /^#+ /.test(line))
            .map(slug),
        ),
      ]),
    )
    const broken: string[] = []
    for (const page of PAGES) {
      const folder = page.includes('/') ? 'docs/' : ''
      for (const [, target, anchor] of textOf(page).matchAll(/\]\(([\w./-]*\.md)?#([\w-]+)\)/g)) {
        const file = target ? new URL(target, `file:///${folder}`).pathname.slice(1) : page
        if (!anchors.get(file)?.has(anchor!)) broken.push(`${page}: ${target ?? ''}#${anchor}`)
      }
    }
    expect(broken).toEqual([])
  })
})
