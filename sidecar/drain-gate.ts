// What the traffic listeners share with the sidecar's graceful drain: whether it is draining
// (responses then carry `connection: close`) and how many exchanges are in flight. One plain
// object, counted where each exchange starts and ends: no extra 'close' listener per request.
export class DrainGate {
  draining = false;
  active = 0;
}
