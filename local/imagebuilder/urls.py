"""Where moto routes Image Builder requests (moto reads a backend's urls module by name)."""

from local.imagebuilder.responses import ImageBuilderResponse

url_bases = [r"https?://imagebuilder\.(.+)\.amazonaws\.com"]

url_paths = {
    "{0}/GetImage$": ImageBuilderResponse.dispatch,
    "{0}/CreateImage$": ImageBuilderResponse.dispatch,
    "{0}/StartImagePipelineExecution$": ImageBuilderResponse.dispatch,
    "{0}/ListImageScanFindings$": ImageBuilderResponse.dispatch,
}
