// App Service Authentication ("Easy Auth") with Microsoft Entra ID in front of an existing app.
// When it is on, the platform validates the caller's token, rejects unauthenticated calls with 401
// (except on excludedPaths), and strips any X-MS-CLIENT-PRINCIPAL* header a caller sends before
// setting its own: only then can the app trust those headers.

@description('Name of the existing web or function app.')
param appName string

@description('Application (client) id of the Entra ID app registration that represents the API.')
param clientId string

@description('Tenant id that issues the tokens.')
param tenantId string = tenant().tenantId

@description('Paths served without authentication, e.g. a health probe.')
param excludedPaths array = []

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: appName
}

resource auth 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov reads every Microsoft.Web/sites/config resource as the `web` config of a site; this one
  // is `authsettingsV2`, so the site-level checks below do not apply to it:
  // checkov:skip=CKV_AZURE_13: this resource is the authentication setting (authsettingsV2, platform.enabled true); checkov looks for the v1 authsettings schema
  // checkov:skip=CKV_AZURE_63: HTTP logging is a site `web` config property, not part of authsettingsV2; requests are logged to Application Insights
  // checkov:skip=CKV_AZURE_65: detailed error pages are a site `web` config property, not part of authsettingsV2
  // checkov:skip=CKV_AZURE_66: failed request tracing is a site `web` config property, not part of authsettingsV2
  // checkov:skip=CKV_AZURE_80: .NET Framework version does not apply (Python app) and is not part of authsettingsV2
  // checkov:skip=CKV_AZURE_88: Azure Files mounts do not apply to Flex Consumption and are not part of authsettingsV2
  // checkov:skip=CKV_AZURE_222: public network access is a site property, not part of authsettingsV2 (see the function app's own skip)
  parent: app
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: excludedPaths
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            clientId
            'api://${clientId}'
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}
