// Preload (`node --require tests/interop/loopback.cjs ...`): every server this Node process
// starts listens on 127.0.0.1 only. Reference servers such as server-everything's `sse` mode
// call `app.listen(PORT)`, which binds every interface; interop tests stay on loopback.
"use strict";
const net = require("net");
const originalListen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  const isPort = typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first));
  if (isPort) {
    const callback = args.find((a) => typeof a === "function");
    const options = { port: Number(first), host: "127.0.0.1" };
    return callback ? originalListen.call(this, options, callback) : originalListen.call(this, options);
  }
  if (first && typeof first === "object" && first.path === undefined) {
    args[0] = { ...first, host: "127.0.0.1" };
  }
  return originalListen.apply(this, args);
};
