// gate/http.ts, the parts that need no server (test/e2e/store.test.ts runs the client against a real HTTPS one):
// bodies read within their limit, a wait that a signal ends whether or not the work notices.
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { abortable, bodyTooLarge, readBytes, readCapped } from '../gate/http.ts'
import { NoVerdictError } from '../gate/vocabulary.ts'

const limits = (maxBytes: number) => ({ maxBytes, tooLarge: bodyTooLarge('the answer', maxBytes) })

describe('bodies and waits', () => {
  it('reads a stream of strings and buffers to the end, and gives up one byte past the limit', async () => {
    expect((await readBytes(Readable.from(['ab', Buffer.from('cd')]), limits(4))).toString()).toBe('abcd')
    await expect(readBytes(Readable.from(['ab', 'cde']), limits(4))).rejects.toThrow(
      /the answer is larger than the --max-body-size of 4 bytes/,
    )
  })

  it('checks a JSON body against the memory left before it is decoded', async () => {
    const json = { what: '--input bomb.json', available: () => 1024 }
    await expect(readCapped(Readable.from(['[],'.repeat(2000)]), { ...limits(10_000), json })).rejects.toThrow(
      NoVerdictError,
    )
    expect(
      await readCapped(Readable.from(['{"a":1}']), { ...limits(100), json: { ...json, available: () => 2 ** 30 } }),
    ).toBe('{"a":1}')
  })

  it('ends a wait when the signal aborts, with its reason, even if the work never settles', async () => {
    const controller = new AbortController()
    const waiting = abortable(new Promise(() => undefined), controller.signal)
    controller.abort(new Error('SIGTERM'))
    await expect(waiting).rejects.toThrow('SIGTERM')
    await expect(abortable(Promise.resolve(7), new AbortController().signal)).resolves.toBe(7)
  })
})
