// gate/kubernetes.ts, pure: the state of an image's scan from a list of ImageVulnerabilityScans, and the list kept
// current by watch events.
import { describe, expect, it } from 'vitest'
import { objectCache, scanStateOf } from '../gate/kubernetes.ts'
import { NoVerdictError } from '../gate/vocabulary.ts'
import { SAMPLE_DIGEST } from './support/documents.ts'
import { imageVulnerabilityScan } from './support/kubernetes.ts'

describe('following a scan, pure', () => {
  it('knows a scan state from its Succeeded condition', () => {
    const list = (...items: unknown[]) => ({ items })
    expect(scanStateOf(list(), SAMPLE_DIGEST)).toEqual({ kind: 'none' })
    expect(
      scanStateOf(
        list(
          imageVulnerabilityScan({
            name: 's',
            digest: SAMPLE_DIGEST,
            succeeded: { status: 'Unknown', reason: 'Running', message: 'scan-task running' },
          }),
        ),
        SAMPLE_DIGEST,
      ),
    ).toEqual({
      kind: 'running',
      name: 's',
      detail: 'Succeeded Unknown (Running: scan-task running)',
    })
    expect(
      scanStateOf(
        list(imageVulnerabilityScan({ name: 's', digest: SAMPLE_DIGEST, succeeded: { status: 'True' } })),
        SAMPLE_DIGEST,
      ),
    ).toMatchObject({ kind: 'running', detail: 'Succeeded, but status.scanResult is empty yet' })
    expect(() => scanStateOf({ items: 'x' }, SAMPLE_DIGEST)).toThrow(/items is not a list/)
  })
  it('keeps a list current from watch events: adds, modifies, deletes, follows resourceVersion, says gone on 410', () => {
    const scan = (name: string, version: string, extra: Record<string, unknown> = {}) => ({
      metadata: { name, resourceVersion: version },
      ...extra,
    })
    const cache = objectCache({ metadata: { resourceVersion: '10' }, items: [scan('a', '9')] } as { items: unknown[] })
    expect(cache.resourceVersion).toBe('10')
    const event = (type: string, object: unknown) => JSON.stringify({ type, object })
    expect(cache.apply(event('ADDED', scan('b', '11')))).toBe('changed')
    expect(cache.apply(event('MODIFIED', scan('a', '12', { status: 'x' })))).toBe('changed')
    expect(cache.items()).toEqual([scan('a', '12', { status: 'x' }), scan('b', '11')])
    expect(cache.apply(event('BOOKMARK', { metadata: { resourceVersion: '13' } }))).toBe('unchanged')
    expect(cache.resourceVersion).toBe('13')
    expect(cache.apply(event('DELETED', scan('b', '14')))).toBe('changed')
    expect(cache.items()).toEqual([scan('a', '12', { status: 'x' })])
    expect(cache.resourceVersion).toBe('14')
    expect(cache.apply(event('ERROR', { code: 410, message: 'too old resource version' }))).toBe('gone')
    expect(() => cache.apply(event('ERROR', { code: 500, message: 'etcd down' }))).toThrow(NoVerdictError)
    expect(() => cache.apply('{"type": "ADDED"')).toThrow(/not JSON/)
  })
})
