/**
 * A loopback Hugging Face Hub for tests (Node only): serves repositories in the Hub's URL layout and headers,
 * with injectable faults, and records every request. Import from `@peftjs/hub/testing`.
 */
export {
  type MockFault,
  type MockFileInfo,
  MockHub,
  type MockHubOptions,
  type MockRepo,
  type MockRepoFile,
  type MockRequest,
  gitBlobOid,
} from './mock-hub.js';
