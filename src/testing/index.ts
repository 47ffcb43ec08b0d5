/** `kappa/testing`: given/when/then specs for processors, on real SQLite files, with no NATS and no server. */
export { processorSpec, GivenStep, WhenStep, type ProcessorSpec, type TestEvent, type TestView, type Row } from "./spec.js";
