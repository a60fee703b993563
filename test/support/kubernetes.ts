// The Kubernetes API, as far as the gate reads it: no API server can run here, so msw handlers behind a real
// HTTPS server (test/support/simulator.ts) serve ImageVulnerabilityScans. What is assumed, from TAP's Scan 2.0
// documentation and the Kubernetes API conventions (the controller and its CRD schema are not public):
// - GET /apis/app-scanning.apps.tanzu.vmware.com/v1alpha1/namespaces/NS/imagevulnerabilityscans answers an
//   ImageVulnerabilityScanList {apiVersion, kind, metadata: {resourceVersion}, items}, filtered by
//   ?labelSelector=k=v[,k=v], 401 without the bearer token, 403 {kind: Status, message} when RBAC denies it;
// - an item has spec.image (digest-pinned), status.scannedImage, status.scanResult, and conditions
//   ScanCompleted and Succeeded (True when done; False with reason Failed; absent with an incompatible Tekton).
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { http, HttpResponse, type JsonBodyType } from 'msw'
import { startSimulator, type Simulator, type Tls } from './simulator.ts'

export const SERVICE_ACCOUNT_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.service-account-token-never-printed.c2E'
export const NAMESPACE = 'dev-team'

export interface ScanSpec {
  readonly name: string
  readonly digest: string
  readonly created?: string
  readonly labels?: Record<string, string>
  /** Absent: no conditions yet. */
  readonly succeeded?: {
    readonly status: 'True' | 'False' | 'Unknown'
    readonly reason?: string
    readonly message?: string
    readonly at?: string
  }
  readonly scanResult?: string
}

/** An ImageVulnerabilityScan as the docs describe it. */
export function imageVulnerabilityScan(scan: ScanSpec): Record<string, unknown> {
  const image = `registry.example.com/project/app@${scan.digest}`
  const conditions = scan.succeeded
    ? ['ScanCompleted', 'Succeeded'].map((type) => ({
        type,
        status: scan.succeeded!.status,
        reason: scan.succeeded!.reason ?? '',
        message: scan.succeeded!.message ?? '',
        lastTransitionTime: scan.succeeded!.at ?? '2026-11-28T12:00:00Z',
      }))
    : undefined
  return {
    apiVersion: 'app-scanning.apps.tanzu.vmware.com/v1alpha1',
    kind: 'ImageVulnerabilityScan',
    metadata: {
      name: scan.name,
      namespace: NAMESPACE,
      creationTimestamp: scan.created ?? '2026-11-28T11:55:00Z',
      labels: { 'carto.run/workload-name': 'app', ...scan.labels },
      annotations: { 'app-scanning.apps.tanzu.vmware.com/scanner-name': 'Trivy' },
    },
    spec: { image, scanResults: { location: 'registry.example.com/project/app-dev-team-scan-results' } },
    status: {
      ...(scan.succeeded?.status === 'True' ? { scannedImage: image } : {}),
      ...(scan.scanResult ? { scanResult: scan.scanResult } : {}),
      ...(conditions ? { conditions } : {}),
    },
  }
}

export interface KubernetesApi extends Simulator {
  /** The service account's folder (token, ca.crt, namespace), as POLICY_SERVICE_ACCOUNT_DIR. */
  readonly serviceAccountDir: string
  /** The environment a pod sees. */
  readonly env: Record<string, string>
  /** The query of each list and watch request, in order. */
  readonly listed: string[]
  /** When (Date.now()) a watch sent each later state. */
  readonly changes: number[]
}

export interface KubernetesOptions {
  /** Answer 403, as RBAC does for a service account without the Role. */
  readonly deny?: boolean
  /** The first watch answers an ERROR event 410 Gone (the resourceVersion is too old), as etcd compaction causes. */
  readonly gone?: boolean
  /** Time between the watch's events (default 100 ms). */
  readonly stepMs?: number
}

/**
 * The scans in `states`: a list answers the current state; a watch from it streams the later states in turn
 * (every scan of each as ADDED or MODIFIED, with increasing resourceVersions, `stepMs` apart), then stays open
 * until its timeoutSeconds, as the API server does.
 */
export async function startKubernetes(
  tls: Tls,
  states: ReadonlyArray<readonly ScanSpec[]>,
  options: KubernetesOptions = {},
): Promise<KubernetesApi> {
  const listed: string[] = []
  const changes: number[] = []
  let current = 0
  let version = 1000
  let goneOnce = options.gone ?? false
  const selected = (url: URL, scans: readonly ScanSpec[]) => {
    const selector = (url.searchParams.get('labelSelector') ?? '')
      .split(',')
      .filter(Boolean)
      .map((term) => term.split('=') as [string, string])
    return scans
      .map(imageVulnerabilityScan)
      .filter((scan) =>
        selector.every(
          ([key, value]) => ((scan.metadata as { labels: Record<string, string> }).labels[key] ?? '') === value,
        ),
      )
  }
  const encoder = new TextEncoder()
  const simulator = await startSimulator(
    [
      http.get(
        '/apis/app-scanning.apps.tanzu.vmware.com/v1alpha1/namespaces/:namespace/imagevulnerabilityscans',
        ({ request, params }) => {
          const url = new URL(request.url)
          listed.push(url.search)
          if (request.headers.get('authorization') !== `Bearer ${SERVICE_ACCOUNT_TOKEN}`)
            return HttpResponse.json(
              { kind: 'Status', status: 'Failure', message: 'Unauthorized', code: 401 },
              { status: 401 },
            )
          if (options.deny) {
            const message =
              `imagevulnerabilityscans.app-scanning.apps.tanzu.vmware.com is forbidden: User ` +
              `"system:serviceaccount:${params.namespace}:default" cannot list resource "imagevulnerabilityscans" in ` +
              `API group "app-scanning.apps.tanzu.vmware.com" in the namespace "${params.namespace}"`
            return HttpResponse.json(
              { kind: 'Status', status: 'Failure', message, reason: 'Forbidden', code: 403 },
              { status: 403 },
            )
          }
          if (url.searchParams.get('watch') !== '1') {
            const items = selected(url, states[Math.min(current, states.length - 1)]!)
            return HttpResponse.json({
              apiVersion: 'app-scanning.apps.tanzu.vmware.com/v1alpha1',
              kind: 'ImageVulnerabilityScanList',
              metadata: { resourceVersion: String(++version) },
              items,
            } as JsonBodyType)
          }
          const timeoutMs = Number(url.searchParams.get('timeoutSeconds') ?? 1800) * 1000
          const stream = new ReadableStream<Uint8Array>({
            async start(controller) {
              const send = (event: unknown) => controller.enqueue(encoder.encode(`${JSON.stringify(event)}\n`))
              if (goneOnce) {
                goneOnce = false
                send({
                  type: 'ERROR',
                  object: {
                    kind: 'Status',
                    status: 'Failure',
                    message: 'too old resource version',
                    reason: 'Expired',
                    code: 410,
                  },
                })
                controller.close()
                return
              }
              const started = Date.now()
              while (current < states.length - 1 && !request.signal.aborted) {
                await new Promise((resolve) => setTimeout(resolve, options.stepMs ?? 100))
                current++
                changes.push(Date.now())
                for (const scan of selected(url, states[current]!)) {
                  const metadata = scan.metadata as Record<string, unknown>
                  metadata.resourceVersion = String(++version)
                  send({ type: 'MODIFIED', object: scan })
                }
              }
              send({
                type: 'BOOKMARK',
                object: { kind: 'ImageVulnerabilityScan', metadata: { resourceVersion: String(version) } },
              })
              await new Promise((resolve) =>
                setTimeout(resolve, Math.max(0, timeoutMs - (Date.now() - started))).unref?.(),
              )
              try {
                controller.close()
              } catch {}
            },
          })
          return new HttpResponse(stream, {
            headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
          })
        },
      ),
    ],
    tls,
  )
  const serviceAccountDir = mkdtempSync(join(tmpdir(), 'service-account-'))
  writeFileSync(join(serviceAccountDir, 'token'), SERVICE_ACCOUNT_TOKEN)
  writeFileSync(join(serviceAccountDir, 'ca.crt'), tls.caCert)
  writeFileSync(join(serviceAccountDir, 'namespace'), NAMESPACE)
  const port = new URL(simulator.url).port
  return {
    ...simulator,
    serviceAccountDir,
    listed,
    changes,
    env: {
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: port,
      POLICY_SERVICE_ACCOUNT_DIR: serviceAccountDir,
    },
  }
}
