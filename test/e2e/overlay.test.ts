// The TAP overlay, applied by the real ytt (v0.45.0, the one ../shared/tools/k8s-check ships) to the two chains of
// TAP's ootb-supply-chain-testing-scanning package as that package's ytt step would: both must be gated, and a
// chain whose resources a future TAP renamed must stop ytt with an error, never pass through ungated. The chains
// are the checker's reconstructions from TAP's documentation (see its README); no package source is public.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { CHECKER, ytt } from '../support/checker.ts'

const OVERLAY = new URL('../../config/tap-overlay/ootb-supply-chain-testing-scanning-policy.yaml', import.meta.url)
  .pathname
const CHAINS = ['source-test-scan-to-url', 'scanning-image-scan-to-url']

let work: string
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'overlay-test-'))
  // The overlay as the package sees it: the Secret's stringData, one ytt file.
  const secret = parseAllDocuments(readFileSync(OVERLAY, 'utf8'))[0]!.toJS() as { stringData: Record<string, string> }
  writeFileSync(join(work, 'overlay.yaml'), Object.values(secret.stringData)[0]!)
})

function render(chains: string[]): Array<{
  metadata: { name: string }
  spec: {
    resources: Array<{
      name: string
      templateRef: { name: string }
      params?: unknown[]
      images?: Array<{ name: string; resource: string }>
    }>
  }
}> {
  const args = chains.flatMap((file) => ['-f', file])
  const output = ytt([...args, '-f', join(work, 'overlay.yaml')])
  return parseAllDocuments(output).map((document) => document.toJS())
}

describe('the TAP overlay on both out-of-the-box chains', () => {
  it("gates both: policy right after image-scanner, taking its image, and config-provider taking the policy's", () => {
    const chains = render(CHAINS.map((name) => `${CHECKER}samples/ootb/${name}.yaml`))
    expect(chains.map((chain) => chain.metadata.name).sort()).toEqual([...CHAINS].sort())
    for (const chain of chains) {
      const names = chain.spec.resources.map((resource) => resource.name)
      expect(names.indexOf('policy'), chain.metadata.name).toBe(names.indexOf('image-scanner') + 1)
      const byName = Object.fromEntries(chain.spec.resources.map((resource) => [resource.name, resource]))
      // After Scan 2.0 (the samples' image-vulnerability-scan-trivy) the gate reads the scan's own results by default.
      expect(byName.policy).toEqual({
        name: 'policy',
        templateRef: { kind: 'ClusterImageTemplate', name: 'policy-enforcement-template' },
        params: [{ name: 'policy_scan_result', default: 'auto' }],
        images: [{ name: 'image', resource: 'image-scanner' }],
      })
      expect(byName['config-provider']!.images).toEqual([{ name: 'image', resource: 'policy' }])
    }
  })

  it('after Scan 1.0 (image-scanner-template, which sends its results to the store) keeps the store as the default', () => {
    const scan1 = join(work, 'scanning-image-scan-to-url.yaml')
    writeFileSync(
      scan1,
      readFileSync(`${CHECKER}samples/ootb/scanning-image-scan-to-url.yaml`, 'utf8').replaceAll(
        'name: image-vulnerability-scan-trivy',
        'name: image-scanner-template',
      ),
    )
    const chains = render([`${CHECKER}samples/ootb/source-test-scan-to-url.yaml`, scan1])
    const defaults = Object.fromEntries(
      chains.map((chain) => [
        chain.metadata.name,
        chain.spec.resources.find((resource) => resource.name === 'policy')!.params,
      ]),
    )
    expect(defaults).toEqual({
      'source-test-scan-to-url': [{ name: 'policy_scan_result', default: 'auto' }],
      'scanning-image-scan-to-url': [{ name: 'policy_scan_result', default: 'store' }],
    })
  })

  it.each([
    [
      'a chain renamed',
      (text: string) => text.replace('name: scanning-image-scan-to-url', 'name: scanning-image-scan-to-url-v2'),
      /Expected number of matched nodes to be 2, but was 1/,
    ],
    [
      'image-scanner renamed',
      (text: string) => text.replace('- name: image-scanner', '- name: image-vulnerability-scanner'),
      /amr-policy-gate: no resource 'image-scanner' in this chain \(it has image-provider, image-vulnerability-scanner, /,
    ],
    [
      'config-provider renamed',
      (text: string) => text.replace('- name: config-provider', '- name: podintent-provider'),
      /amr-policy-gate: no resource 'config-provider' in this chain/,
    ],
  ])('stops ytt loudly when a future TAP has %s, instead of leaving a chain ungated', (_name, change, error) => {
    const changed = join(work, 'scanning-image-scan-to-url.yaml')
    writeFileSync(changed, change(readFileSync(`${CHECKER}samples/ootb/scanning-image-scan-to-url.yaml`, 'utf8')))
    expect(() => render([`${CHECKER}samples/ootb/source-test-scan-to-url.yaml`, changed])).toThrow(error)
  })
})
