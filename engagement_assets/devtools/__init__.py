"""Development support, apart from the product: the sample landing-area generator, the generated
conversations, the fake NocoDB server, the demos (`engagement-demo`) and helpers that run assets in-process.
Nothing in a deployment imports this package; the tests, benchmarks and the demo do."""
