// The smallest hitless app: `npm run build && npm start`, then `hitless reload` (or
// `kill -HUP <master pid>`) while hammering http://127.0.0.1:3000/ — no request fails.
// Run alone (`node server.js`) it listens on PORT or 3000 and drains on Ctrl-C.
import { serve } from '../../build/src/index.js';

await serve((req, res) => res.end('hello from hitless\n'));
