/**
 * The part of workerd's `cloudflare:sockets` that src/connect/workerd-socket.ts uses (declared here so that the
 * package type-checks without @cloudflare/workers-types).
 */
declare module 'cloudflare:sockets' {
  export interface SocketAddress {
    hostname: string
    port: number
  }
  export interface SocketOptions {
    secureTransport?: 'off' | 'on' | 'starttls'
    allowHalfOpen?: boolean
  }
  export interface Socket {
    readonly readable: ReadableStream<Uint8Array>
    readonly writable: WritableStream<Uint8Array>
    readonly opened: Promise<unknown>
    readonly closed: Promise<void>
    close(): Promise<void>
    startTls(options?: { expectedServerHostname?: string; servername?: string }): Socket
  }
  export function connect(address: string | SocketAddress, options?: SocketOptions): Socket
}
