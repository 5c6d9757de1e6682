// esbuild's file loader turns an imported .wasm into its URL.
declare module '*.wasm' {
  const url: string;
  export default url;
}

// Vite's ?url import: the asset's URL.
declare module '*?url' {
  const url: string;
  export default url;
}
