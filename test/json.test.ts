// gate/json.ts: JSON from outside, parsed and checked for shape, every failure no verdict naming the document.
import { describe, expect, it } from 'vitest'
import {
  describeJson,
  firstLine,
  IMAGE_REPORT,
  listAt,
  objectAt,
  parseJson,
  parseJsonBody,
  textOf,
} from '../gate/json.ts'
import { NoVerdictError } from '../gate/vocabulary.ts'

describe('JSON from outside', () => {
  it('ignores a byte order mark at the start, as Windows tools write one', () => {
    expect(parseJson('\ufeff{"a":1}')).toEqual({ a: 1 })
  })

  it("says a body is not JSON, quoting its first line through the peer's quote", () => {
    const parse = () =>
      parseJsonBody('<html>\n<body>', 'the store answered 200 with a body that', (text) => text.replace('html', '****'))
    expect(parse).toThrow(NoVerdictError)
    expect(parse).toThrow(/the store answered 200 with a body that is not JSON \([\s\S]*\): "<\*\*\*\*>"/)
  })

  it('checks shapes: null or missing lists are empty, anything else that is not a list is malformed', () => {
    expect(listAt(IMAGE_REPORT, { Packages: null }, 'Packages', '')).toEqual([])
    expect(listAt(IMAGE_REPORT, {}, 'Packages', '')).toEqual([])
    expect(() => listAt(IMAGE_REPORT, { Packages: 'x' }, 'Packages', '')).toThrow(
      /the image report is malformed: Packages is a string, expected a list/,
    )
    expect(() => objectAt(IMAGE_REPORT, [], 'Packages[0]')).toThrow(/Packages\[0\] is a list, expected an object/)
    expect([null, [], {}, 1].map(describeJson)).toEqual(['null', 'a list', 'an object', 'a number'])
  })

  it('reads text fields as text, and cuts a long first line', () => {
    expect([textOf(' a '), textOf(7), textOf(null), textOf({})]).toEqual(['a', '7', '', ''])
    expect(firstLine(`  ${'x'.repeat(300)}\nsecond`, 10)).toBe('xxxxxxxxxx...')
  })
})
