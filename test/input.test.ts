// gate/input.ts: what the command line and the environment give, parsed: image and scan result references,
// durations, gates, sizes, the store's URL.
import { describe, it, expect } from 'vitest'
import {
  formatDuration,
  imageEndpoint,
  parseDuration,
  parseGate,
  parseImageRef,
  parseOciRef,
  parseSize,
  parseStoreUrl,
} from '../gate/input.ts'
import { UsageError } from '../gate/vocabulary.ts'
import { SAMPLE_DIGEST } from './support/documents.ts'

const HEX = 'a'.repeat(64)

describe('parseImageRef', () => {
  it.each([
    ['bare digest', `sha256:${HEX}`],
    ['repository', `app@sha256:${HEX}`],
    ['registry and path', `registry.example.com/tap/app@sha256:${HEX}`],
    ['registry with port and tag', `localhost:5000/team/app:v1.2.3@sha256:${HEX}`],
    ['IPv6 registry', `[::1]:5000/app@sha256:${HEX}`],
    ['surrounding spaces', `  app@sha256:${HEX}\n`],
  ])('accepts a %s', (_name, input) => {
    expect(parseImageRef(input).digest).toBe(`sha256:${HEX}`)
  })

  it('lower-cases the digest', () => {
    expect(parseImageRef(`sha256:${'A'.repeat(64)}`).digest).toBe(`sha256:${HEX}`)
  })

  it.each([
    ['empty', '', /no image given/],
    ['tag only', 'registry.example.com/app:latest', /has no sha256 digest/],
    ['short digest', 'app@sha256:abc', /has no sha256 digest/],
    ['sha512 digest', `app@sha512:${HEX}${HEX}`, /has no sha256 digest/],
    ['uppercase repository', `App@sha256:${HEX}`, /invalid name/],
    ['trailing slash', `registry/@sha256:${HEX}`, /invalid name/],
  ])('refuses %s with a message naming the fix', (_name, input, message) => {
    expect(() => parseImageRef(input)).toThrow(message)
    expect(() => parseImageRef(input)).toThrow(UsageError)
  })
})

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['90', 90_000],
    ['1.5', 1_500],
    [' 2s ', 2_000],
  ])('%s is %i ms', (input, ms) => {
    expect(parseDuration(input, '--timeout')).toBe(ms)
  })

  it.each(['', '0', '0s', '-5s', '5 minutes', '5d', 'm', '1h-30m'])('refuses %j naming the option', (input) => {
    expect(() => parseDuration(input, '--timeout')).toThrow(/--timeout/)
  })

  it.each([
    [400, '400ms'],
    [5_000, '5s'],
    [65_000, '1m05s'],
    [3_725_000, '1h02m05s'],
  ])('formats %i ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text)
  })
})

describe('parseGate and parseStoreUrl', () => {
  it.each(['none', 'LOW', ' Medium ', 'high', 'CRITICAL'])('accepts gate %j in any case', (gate) => {
    expect(parseGate(gate)).toBe(gate.trim().toLowerCase())
  })

  it.each(['', 'severe', 'hihg', 'unknown'])('refuses gate %j listing the accepted ones', (gate) => {
    expect(() => parseGate(gate)).toThrow(/use none, low, medium, high or critical/)
  })

  it.each([
    ['metadata-store.example.com', 'https://metadata-store.example.com/api/v1/images/'],
    ['localhost:8443', 'https://localhost:8443/api/v1/images/'],
    ['store.example.com/prefix/', 'https://store.example.com/prefix/api/v1/images/'],
    ['https://store.example.com:8443', 'https://store.example.com:8443/api/v1/images/'],
  ])('reads %s as the seed does (https implied)', (input, endpoint) => {
    expect(imageEndpoint(parseStoreUrl(input), SAMPLE_DIGEST).href).toBe(`${endpoint}${SAMPLE_DIGEST}`)
  })

  it.each([
    ['http://store.example.com', /token would travel in clear/],
    ['ftp://store.example.com', /must use https/],
    ['https://user:secret@store.example.com', /must not hold credentials/],
    ['https://store.example.com/?x=1', /query/],
    ['https://', /not a URL/],
  ])('refuses %s', (input, message) => {
    expect(() => parseStoreUrl(input)).toThrow(message)
  })
})

describe('parseSize', () => {
  it.each([
    ['1048576', 1_048_576],
    ['512KiB', 524_288],
    ['10MB', 10_000_000],
    ['256MiB', 268_435_456],
    ['1.5 GiB', 1_610_612_736],
  ])('%s is %i bytes', (text, bytes) => expect(parseSize(text)).toBe(bytes))

  it.each(['', '0', '10 parsecs', '-1MB', 'MB'])('refuses %j', (text) =>
    expect(() => parseSize(text)).toThrow(/is not a size/),
  )
})

describe('parseOciRef', () => {
  it('parses references as status.scanResult shows them', () => {
    expect(
      parseOciRef('registry.example.com:5000/project/app-scan-results@sha256:' + 'A'.repeat(64), '--scan-result'),
    ).toEqual({
      reference: 'registry.example.com:5000/project/app-scan-results@sha256:' + 'A'.repeat(64),
      registry: 'registry.example.com:5000',
      repository: 'project/app-scan-results',
      tagOrDigest: `sha256:${'a'.repeat(64)}`,
      digest: `sha256:${'a'.repeat(64)}`,
    })
    expect(parseOciRef('localhost/app:uid-1', '--scan-result')).toMatchObject({
      registry: 'localhost',
      repository: 'app',
      tagOrDigest: 'uid-1',
    })
    expect(() => parseOciRef('registry.example.com/app@sha256:short', '--scan-result')).toThrow(UsageError)
  })
})
