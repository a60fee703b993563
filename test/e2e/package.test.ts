// The Carvel package (config/package/), as kapp-controller would install it: its bundle assembled by
// scripts/package-bundle.sh, rendered by the real ytt v0.45.0 with default and custom values, every object
// validated against the real CRD schemas (kapp-controller's Package, PackageMetadata, PackageRepository and
// PackageInstall among them; ../shared/tools/k8s-check). kbld and kapp are not installable here: what they would
// do with the rendered YAML (pin the locked image, deploy) rests on carvel.dev's docs.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse, parseAllDocuments, stringify } from 'yaml'
import { validateSchemas, ytt } from '../support/checker.ts'

const ROOT = new URL('../../', import.meta.url).pathname
const IMAGE =
  'registry.example.com/tools/amr-policy-gate@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'

interface Manifest {
  kind: string
  metadata: { name: string; namespace?: string }
  spec?: any
  [field: string]: unknown
}

function bundle(image?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'package-bundle-'))
  execFileSync('bash', [`${ROOT}scripts/package-bundle.sh`, dir, ...(image ? [image] : [])])
  return dir
}

function render(dir: string, values: Record<string, unknown> = {}): Manifest[] {
  const valuesFile = join(dir, 'values.yaml')
  writeFileSync(valuesFile, stringify(values))
  const output = ytt(['-f', join(dir, 'config'), '--data-values-file', valuesFile])
  return parseAllDocuments(output).map((document) => document.toJS() as Manifest)
}

const names = (objects: Manifest[]) =>
  objects.map((object) => `${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`).sort()

describe('the Carvel package', () => {
  const [metadata, pkg] = parseAllDocuments(readFileSync(`${ROOT}config/package/package.yaml`, 'utf8')).map(
    (document) => document.toJS(),
  )

  it('declares the version of package.json and the values schema of its bundle, as ytt inspects it', () => {
    const { version } = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8'))
    expect(pkg.spec.version).toBe(version)
    expect(pkg.metadata.name).toBe(`${metadata.metadata.name}.${version}`)
    const inspected = parse(
      ytt([
        '-f',
        `${ROOT}config/package/bundle/values-schema.yaml`,
        '--data-values-schema-inspect',
        '-o',
        'openapi-v3',
      ]),
    )
    expect(pkg.spec.valuesSchema.openAPIv3).toEqual(inspected.components.schemas.dataValues)
    expect(pkg.spec.template.spec.template).toEqual([
      { ytt: { paths: ['config/'] } },
      { kbld: { paths: ['-', '.imgpkg/images.yml'] } },
    ])
  })

  it('locks the published image in the bundle, for kbld and imgpkg copy', () => {
    const dir = bundle(IMAGE)
    expect(parse(readFileSync(join(dir, '.imgpkg/images.yml'), 'utf8'))).toEqual({
      apiVersion: 'imgpkg.carvel.dev/v1alpha1',
      kind: 'ImagesLock',
      images: [{ image: IMAGE, annotations: { 'kbld.carvel.dev/id': IMAGE } }],
    })
  })

  it("installs the cluster-wide pieces by default: the templates, the TAP overlay, the store secrets' exports", () => {
    expect(names(render(bundle(IMAGE)))).toEqual([
      'ClusterImageTemplate//policy-enforcement-template',
      'ClusterRunTemplate//tekton-policy-enforcement-taskrun',
      'Namespace//amr-policy-gate',
      'Secret/tap-install/ootb-supply-chain-testing-scanning-policy',
      'SecretExport/amr-policy-gate/metadata-store-access-token',
      'SecretExport/amr-policy-gate/metadata-store-cert',
    ])
  })

  it('sets up the namespaces its values list, with its image and mode, and leaves out what its values turn off', () => {
    const objects = render(bundle(IMAGE), {
      namespaces: ['dev'],
      mode: 'audit',
      service_accounts: ['ci'],
      metadata_store_url: 'metadata-store.view.example.com',
      tap_overlay: false,
      store_secrets: false,
    })
    expect(names(objects)).toEqual([
      'ClusterImageTemplate//policy-enforcement-template',
      'ClusterRunTemplate//tekton-policy-enforcement-taskrun',
      'Role/dev/amr-policy-gate-scan-reader',
      'RoleBinding/dev/amr-policy-gate-scan-reader',
      'SecretImport/dev/metadata-store-access-token',
      'SecretImport/dev/metadata-store-cert',
      'Task/dev/tekton-policy-enforcement',
    ])
    const task = objects.find((object) => object.kind === 'Task')!
    expect(task.spec.steps[0].image).toBe(IMAGE)
    expect(task.spec.params.find((param: { name: string }) => param.name === 'mode').default).toBe('audit')
    expect(objects.find((object) => object.kind === 'RoleBinding')!.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'default' },
      { kind: 'ServiceAccount', name: 'ci' },
    ])
    const template = objects.find((object) => object.kind === 'ClusterImageTemplate')!
    expect(
      template.spec.params.find((param: { name: string }) => param.name === 'policy_metadata_store_url').default,
    ).toBe('metadata-store.view.example.com')
  })

  it('stops with an error naming the value when the bundle names no image pinned by digest', () => {
    expect(() => render(bundle(), { namespaces: ['dev'] })).toThrow(
      /amr-policy-gate: the package value image is '': give the gate's image pinned by digest/,
    )
  })

  it('renders, and ships to install, only objects the real CRD schemas accept', () => {
    const dir = bundle(IMAGE)
    const rendered = mkdtempSync(join(tmpdir(), 'package-rendered-'))
    writeFileSync(
      join(rendered, 'all.yaml'),
      render(dir, { namespaces: ['dev'] })
        .map((object) => stringify(object))
        .join('---\n'),
    )
    const { ok, log } = validateSchemas([
      rendered,
      `${ROOT}config/package/package.yaml`,
      `${ROOT}config/package/install.yaml`,
    ])
    for (const kind of [
      'Package',
      'PackageMetadata',
      'PackageRepository',
      'PackageInstall',
      'Task',
      'SecretImport',
      'ClusterImageTemplate',
    ]) {
      expect(log).toMatch(new RegExp(`${kind}\\b.*OK`))
    }
    expect(ok, log).toBe(true)
  })
})
