// The API browser at /docs: Swagger UI, served by Chargeslot from its Python package, pointed at
// this site's OpenAPI document. It is started here rather than in an inline script so the page
// keeps the same CSP as every other page, and it asks no other host for anything.
const root = document.getElementById("swagger-ui");

window.SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  domNode: root,
  deepLinking: true,
  layout: "BaseLayout",
  presets: [window.SwaggerUIBundle.presets.apis],
  validatorUrl: null, // the default sends the document to a public validator
});
