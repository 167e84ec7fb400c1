// What the cache suites read off every response, and how they reach Redis behind the worker.
import { sleep } from "./harness.mjs";

/** `X-Cache` of a response. */
export const xc = (res) => res.headers["x-cache"];
/** `Cache-Status` of a response ("" when absent). */
export const cs = (res) => res.headers["cache-status"] ?? "";
/** Background stores run in ctx.waitUntil after the response: give them a moment. */
export const settle = () => sleep(250);

/** Sends one command straight to the stack's gateway (bypassing the worker and any proxy). */
export async function gatewayCommand(stack, command) {
  const res = await fetch(stack.gateway.url, {
    method: "POST",
    headers: { authorization: `Bearer ${stack.gateway.token}` },
    body: JSON.stringify(command),
  });
  return (await res.json()).result;
}
