// A Worker that only passes each request on through its service binding,
// as our router and the rooms Worker's entry do before a socket reaches its
// Durable Object. Two of these in front of relay.js (config-hops.capnp)
// measure what those two hops cost the platform floor.
export default {
  fetch(request, env) {
    return env.NEXT.fetch(request);
  },
};
