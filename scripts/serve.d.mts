import type { Server } from 'node:http';

/** Serves `root` on 127.0.0.1:`port` (0: any free port); resolves with the server and its base URL. */
export function serveStatic(root: string, port?: number): Promise<{ server: Server; url: string }>;
