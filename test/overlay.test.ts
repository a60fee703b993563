// The TAP overlay, applied by the real ytt (v0.45.0, the one ../shared/tools/k8s-check ships) to the two chains of
// TAP's ootb-supply-chain-testing-scanning package as that package's ytt step would: both must be gated, and a
// chain whose resources a future TAP renamed must stop ytt with an error, never pass through ungated. The chains
// are the checker's reconstructions from TAP's documentation (see its README); no package source is public.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { beforeAll, describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'

const CHECKER = new URL('../../shared/tools/k8s-check/', import.meta.url).pathname
const OVERLAY = new URL('../config/tap-overlay/ootb-supply-chain-testing-scanning-policy.yaml', import.meta.url).pathname
const CHAINS = ['source-test-scan-to-url', 'scanning-image-scan-to-url']

let work: string
let ytt: string
beforeAll(() => {
  if (!existsSync(`${CHECKER}bin/ytt.gz`)) throw new Error(`the overlay test needs ytt from ${CHECKER} (the shared folder beside the checkout, as CI has it)`)
  work = mkdtempSync(join(tmpdir(), 'overlay-test-'))
  ytt = join(work, 'ytt')
  writeFileSync(ytt, gunzipSync(readFileSync(`${CHECKER}bin/ytt.gz`)), { mode: 0o755 })
  // The overlay as the package sees it: the Secret's stringData, one ytt file.
  const secret = parseAllDocuments(readFileSync(OVERLAY, 'utf8'))[0]!.toJS() as { stringData: Record<string, string> }
  writeFileSync(join(work, 'overlay.yaml'), Object.values(secret.stringData)[0]!)
})

function render(chains: string[]): Array<{ metadata: { name: string }; spec: { resources: Array<{ name: string; templateRef: { name: string }; images?: Array<{ name: string; resource: string }> }> } }> {
  const args = chains.flatMap((file) => ['-f', file])
  const output = execFileSync(ytt, [...args, '-f', join(work, 'overlay.yaml')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  return parseAllDocuments(output).map((document) => document.toJS())
}

describe('the TAP overlay on both out-of-the-box chains', () => {
  it('gates both: policy right after image-scanner, taking its image, and config-provider taking the policy\'s', () => {
    const chains = render(CHAINS.map((name) => `${CHECKER}samples/ootb/${name}.yaml`))
    expect(chains.map((chain) => chain.metadata.name).sort()).toEqual([...CHAINS].sort())
    for (const chain of chains) {
      const names = chain.spec.resources.map((resource) => resource.name)
      expect(names.indexOf('policy'), chain.metadata.name).toBe(names.indexOf('image-scanner') + 1)
      const byName = Object.fromEntries(chain.spec.resources.map((resource) => [resource.name, resource]))
      expect(byName.policy).toMatchObject({ templateRef: { name: 'policy-enforcement-template' }, images: [{ name: 'image', resource: 'image-scanner' }] })
      expect(byName['config-provider']!.images).toEqual([{ name: 'image', resource: 'policy' }])
    }
  })

  it.each([
    ['a chain renamed', (text: string) => text.replace('name: scanning-image-scan-to-url', 'name: scanning-image-scan-to-url-v2'), /Expected number of matched nodes to be 2, but was 1/],
    ['image-scanner renamed', (text: string) => text.replace('- name: image-scanner', '- name: image-vulnerability-scanner'), /Expected number of matched nodes to be 1, but was 0/],
    ['config-provider renamed', (text: string) => text.replace('- name: config-provider', '- name: podintent-provider'), /Expected number of matched nodes to be 1, but was 0/],
  ])('stops ytt loudly when a future TAP has %s, instead of leaving a chain ungated', (_name, change, error) => {
    const changed = join(work, 'scanning-image-scan-to-url.yaml')
    writeFileSync(changed, change(readFileSync(`${CHECKER}samples/ootb/scanning-image-scan-to-url.yaml`, 'utf8')))
    expect(() => render([`${CHECKER}samples/ootb/source-test-scan-to-url.yaml`, changed])).toThrow(error)
  })
})
