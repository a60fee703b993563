// gate/registry.ts, pure: Docker configs, WWW-Authenticate challenges, tar archives and manifests as a registry
// serves them (test/e2e/scan-result.test.ts runs the registry client against Debian's docker-registry).
import { describe, expect, it } from 'vitest'
import { credentialsFor, filesOfTar, manifestFrom, parseChallenge } from '../gate/registry.ts'
import { tarOf } from './support/registry.ts'

describe('reading registry data, pure', () => {
  it('finds credentials under any spelling of the registry in a Docker config, and never guesses', () => {
    const auth = Buffer.from('robot$ci:s3cret:with:colons').toString('base64')
    expect(
      credentialsFor({ auths: { 'https://registry.example.com/v1/': { auth } } }, 'registry.example.com', 'f'),
    ).toEqual({ username: 'robot$ci', password: 's3cret:with:colons' })
    expect(credentialsFor({ auths: { 'other.example.com': { auth } } }, 'registry.example.com', 'f')).toBeUndefined()
    expect(() =>
      credentialsFor(
        { auths: { 'registry.example.com': { auth: Buffer.from('nocolon').toString('base64') } } },
        'registry.example.com',
        'f',
      ),
    ).toThrow(/not base64 of user:password/)
    expect(() =>
      credentialsFor({ auths: { 'registry.example.com': { identitytoken: 'x' } } }, 'registry.example.com', 'f'),
    ).toThrow(/identity token/)
    expect(() => credentialsFor([], 'registry.example.com', 'f')).toThrow(/not a Docker config/)
  })

  it('reads WWW-Authenticate challenges with quoted and escaped values', () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull"',
      ),
    ).toEqual({
      scheme: 'bearer',
      params: {
        realm: 'https://auth.example.com/token',
        service: 'registry.example.com',
        scope: 'repository:a/b:pull',
      },
    })
    expect(parseChallenge('Basic realm="a \\"quoted\\" realm"')).toEqual({
      scheme: 'basic',
      params: { realm: 'a "quoted" realm' },
    })
    expect(parseChallenge(undefined)).toBeUndefined()
  })

  it('reads tar archives, and refuses what is not one rather than finding it empty', () => {
    const tar = tarOf({ 'scan.cdx.json': '{}', [`${'d'.repeat(120)}/long.json`]: 'x' })
    expect(filesOfTar(tar, 'layer').map((file) => [file.name, file.content.toString()])).toEqual([
      ['scan.cdx.json', '{}'],
      [`${'d'.repeat(120)}/long.json`.slice(0, 100), 'x'],
    ])
    expect(() => filesOfTar(Buffer.alloc(1024, 7), 'layer')).toThrow(/not a tar archive/)
    expect(() => filesOfTar(tarOf({ 'big.json': 'x'.repeat(1000) }).subarray(0, 600), 'layer')).toThrow(/truncated/)
  })

  it('checks the manifest fields it relies on', () => {
    expect(() => manifestFrom({ layers: [{ digest: 'md5:x', size: 1 }] }, '', 'the manifest')).toThrow(
      /layers\[0\] has no sha256 digest/,
    )
    expect(() =>
      manifestFrom({ layers: [{ digest: `sha256:${'a'.repeat(64)}`, size: -1 }] }, '', 'the manifest'),
    ).toThrow(/layers\[0\]\.size is/)
    expect(manifestFrom({ manifests: [] }, 'application/vnd.oci.image.index.v1+json', 'x').kind).toBe('index')
  })
})
