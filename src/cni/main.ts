// ferry-cni entry point. A runtime starts a fresh process for every ADD and DEL, so startup is
// most of an ADD's cost: V8's compile cache (kept outside the repo, shared by all invocations)
// cuts it by about two thirds, and has to be switched on before the plugin's modules load.
import { enableCompileCache } from 'node:module';

enableCompileCache(`${process.env.FERRY_CACHE ?? '/var/cache/ferry'}/node-compile-cache`);
const { main } = await import('./invoke.ts');
process.exitCode = await main();
