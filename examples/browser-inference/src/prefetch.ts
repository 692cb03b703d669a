/**
 * Everything the page may need later is fetched while it loads (the bundled tasks' sheets included), so that it
 * keeps working with no network once it says it is ready.
 */
const blobs = new Map<string, Promise<Blob>>();

async function download(url: string): Promise<Blob> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return response.blob();
}

/** The file at `url`, downloaded once (the first call starts the download). */
export function cachedBlob(url: string): Promise<Blob> {
  let blob = blobs.get(url);
  if (!blob) {
    blob = download(url);
    blobs.set(url, blob);
    blob.catch(() => blobs.delete(url));
  }
  return blob;
}

/** The JSON file at `url`, downloaded once. */
export async function cachedJson<T>(url: string): Promise<T> {
  return JSON.parse(await (await cachedBlob(url)).text()) as T;
}

/** Downloads every file of every bundled task now. */
export async function prefetchTasks(base: string, names: readonly string[]): Promise<void> {
  const files = names.flatMap((name) =>
    ['task.json', 'train.png', 'val.png', 'test.png'].map((f) => `${base}tasks/${name}/${f}`),
  );
  await Promise.all(files.map(cachedBlob));
}
