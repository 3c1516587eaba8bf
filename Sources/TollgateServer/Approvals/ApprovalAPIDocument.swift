/// The OpenAPI 3.1 description of `/v1`, served at `/v1/openapi.json`: the file `openapi.json` beside this one,
/// compiled into the binary (`Package.swift` embeds it, as it does the SQL migrations). `ApprovalAPITests` checks that
/// it lists exactly the operations ``ApprovalRoutes/Operation`` serves, calls every one of them and checks each answer
/// against it, so it stays true.
enum ApprovalAPIDocument {
    static let bytes: [UInt8] = PackageResources.openapi_json
}
