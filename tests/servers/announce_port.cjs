// Preloaded into a Node server (`node --require announce_port.cjs server.js`): prints
// "listening on http://127.0.0.1:PORT" on stderr once a server listens, so that a test can start
// it on port 0 and learn the port it bound.
const net = require("node:net");

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  this.once("listening", () => {
    const address = this.address();
    if (address && typeof address === "object") {
      process.stderr.write(`listening on http://127.0.0.1:${address.port}\n`);
    }
  });
  return listen.apply(this, args);
};
